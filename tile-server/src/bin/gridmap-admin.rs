//! `gridmap-admin`: create and manage users and API keys of gridmap-server.
//!
//! Works on `DATABASE_URL`, or on the project-local cluster when it is unset,
//! like the other tools. Passwords are read from stdin (`--password-stdin`, or
//! whenever stdin is not a terminal) or prompted for without echo.

use anyhow::{bail, ensure, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use gridmap_server::auth::credentials;
use gridmap_store::access_queries::{self, NewUser};
use std::io::{BufRead as _, IsTerminal as _};

#[derive(Parser)]
#[command(version, about = "Manage the users and API keys of gridmap-server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Users who log in to the web map and the API.
    #[command(subcommand)]
    User(UserCommand),
    /// API keys of integrating systems (lookup only).
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: UserRole,
        /// A street (9-digit) or community (12-digit) code the planner may
        /// edit; repeat for several. Required for planners, refused otherwise.
        #[arg(long = "scope", value_name = "CODE")]
        scopes: Vec<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their roles and scopes.
    List,
    /// Disable a user and end its sessions.
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
    /// Set a new password and end the user's sessions.
    Passwd {
        name: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key and print it once; only its hash is stored.
    Add { name: String },
    /// List API keys (their prefixes, never the secrets).
    List,
    /// Revoke the live key of this name.
    Revoke { name: String },
}

#[derive(Clone, Copy, ValueEnum)]
enum UserRole {
    Admin,
    Planner,
    Viewer,
}

impl UserRole {
    fn as_str(self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::Planner => "planner",
            UserRole::Viewer => "viewer",
        }
    }
}

/// Shorter passwords are refused: Argon2 slows guessing, it cannot make a
/// short password strong.
const MIN_PASSWORD_CHARS: usize = 10;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    // Ask for the password before connecting, so a prompt is not delayed
    // by starting the local cluster.
    let password = match &cli.command {
        Command::User(UserCommand::Add { password_stdin, .. })
        | Command::User(UserCommand::Passwd { password_stdin, .. }) => {
            Some(read_password(*password_stdin)?)
        }
        _ => None,
    };
    let pool = gridmap_store::connect(2)
        .await
        .context("connecting to the database")?;
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::User(command) => user(&pool, command, password, &mut out).await,
        Command::Key(command) => key(&pool, command, &mut out).await,
    }
}

async fn user(
    pool: &sqlx::PgPool,
    command: UserCommand,
    password: Option<String>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name, role, scopes, ..
        } => {
            check_scopes(role, &scopes)?;
            let password_hash = hash(password)?;
            let user = NewUser {
                username: name.trim(),
                password_hash: &password_hash,
                role: role.as_str(),
                scopes: &scopes,
            };
            if access_queries::create_user(pool, &user).await?.is_none() {
                bail!("user {} exists already", user.username);
            }
            writeln!(out, "created {} user {}", role.as_str(), user.username)?;
        }
        UserCommand::List => {
            for user in access_queries::list_users(pool).await? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\tcreated {}",
                    user.username,
                    user.role,
                    if user.scopes.is_empty() {
                        "-".to_owned()
                    } else {
                        user.scopes.join(",")
                    },
                    if user.disabled { "disabled" } else { "active" },
                    user.created_at
                )?;
            }
        }
        UserCommand::Disable { name } => {
            ensure!(
                access_queries::set_user_disabled(pool, &name, true).await?,
                "no user {name}"
            );
            writeln!(out, "disabled user {name}; its sessions are ended")?;
        }
        UserCommand::Enable { name } => {
            ensure!(
                access_queries::set_user_disabled(pool, &name, false).await?,
                "no user {name}"
            );
            writeln!(out, "enabled user {name}")?;
        }
        UserCommand::Passwd { name, .. } => {
            let password_hash = hash(password)?;
            ensure!(
                access_queries::set_password(pool, &name, &password_hash).await?,
                "no user {name}"
            );
            writeln!(
                out,
                "changed the password of {name}; its sessions are ended"
            )?;
        }
    }
    Ok(())
}

async fn key(
    pool: &sqlx::PgPool,
    command: KeyCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match command {
        KeyCommand::Add { name } => {
            let name = name.trim();
            let api_key = credentials::new_api_key();
            let created = access_queries::create_api_key(
                pool,
                name,
                credentials::display_prefix(&api_key),
                &credentials::token_sha256(&api_key),
            )
            .await?;
            ensure!(
                created,
                "a live key named {name} exists already; revoke it first"
            );
            // The only time the key is shown: the database keeps its hash.
            writeln!(out, "{api_key}")?;
            eprintln!("API key {name} created; store it now, it cannot be shown again");
        }
        KeyCommand::List => {
            for key in access_queries::list_api_keys(pool).await? {
                let state = key
                    .revoked_at
                    .map_or_else(|| "live".to_owned(), |at| format!("revoked {at}"));
                writeln!(
                    out,
                    "{}\t{}…\t{}\tcreated {}",
                    key.name, key.prefix, state, key.created_at
                )?;
            }
        }
        KeyCommand::Revoke { name } => {
            ensure!(
                access_queries::revoke_api_key(pool, &name).await?,
                "no live key named {name}"
            );
            writeln!(
                out,
                "revoked API key {name}; servers refuse it once their token cache expires (5 s by default)"
            )?;
        }
    }
    Ok(())
}

/// Planners need at least one street or community; other roles take none.
fn check_scopes(role: UserRole, scopes: &[String]) -> anyhow::Result<()> {
    for scope in scopes {
        ensure!(
            matches!(scope.len(), 9 | 12) && scope.bytes().all(|b| b.is_ascii_digit()),
            "--scope {scope}: a street code has 9 digits, a community code 12"
        );
    }
    match role {
        UserRole::Planner => ensure!(
            !scopes.is_empty(),
            "a planner needs at least one --scope (street or community code)"
        ),
        UserRole::Admin | UserRole::Viewer => ensure!(
            scopes.is_empty(),
            "--scope applies to planners only; {} users are not scoped",
            role.as_str()
        ),
    }
    Ok(())
}

fn hash(password: Option<String>) -> anyhow::Result<String> {
    let password = password.context("no password read")?;
    credentials::hash_password(&password).context("hashing the password")
}

/// The password from stdin's first line, or from two prompts on the terminal.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let again = rpassword::prompt_password("Again: ").context("reading the password")?;
        ensure!(first == again, "the two passwords differ");
        first
    };
    ensure!(
        password.chars().count() >= MIN_PASSWORD_CHARS,
        "a password needs at least {MIN_PASSWORD_CHARS} characters"
    );
    Ok(password)
}
