fn main() {
    // Embedded migrations must be re-read when a file is added or changed.
    println!("cargo:rerun-if-changed=migrations");
}
