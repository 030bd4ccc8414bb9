-- Access control: users with roles, their scopes, login sessions and API keys.
-- Replicas keep nothing of this in memory beyond a cache of a few seconds, so
-- every replica sees a new session, a logout or a revoked key.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE
                  CHECK (length(username) BETWEEN 1 AND 64 AND username = btrim(username)),
    -- An argon2 PHC string; the password itself is never stored.
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    role          text NOT NULL CHECK (role IN ('admin', 'planner', 'viewer')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- The streets (9 digits) and communities (12 digits) a planner may edit. No
-- foreign key: a scope may name a street or community imported later.
CREATE TABLE user_scopes (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code    text NOT NULL CHECK (code ~ '^([0-9]{9}|[0-9]{12})$'),
    PRIMARY KEY (user_id, code)
);

-- Only the SHA-256 of a session token is kept: a copy of this table does not
-- let anyone log in. The primary key is the one index a request looks up.
CREATE TABLE sessions (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Keys of integrating systems (lookup only). `prefix` is the start of the key,
-- shown in listings so an operator can tell keys apart without the secret.
CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL
                  CHECK (length(name) BETWEEN 1 AND 64 AND name = btrim(name)),
    prefix        text NOT NULL,
    secret_sha256 bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
-- A name may be reused once its earlier key is revoked.
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
