# Shared by scripts/*: paths, the project's tool venv, small helpers. Sourced, not run.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/scripts/requirements.txt"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the pinned tools (moto, cfn-lint, SAM CLI, cargo-lambda, zig) into .venv once; does
# nothing, silently, when the requirements file has not changed since the last install.
ensure_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/moto_server" ]; then
    export PATH="$VENV/bin:$PATH"
    return 0
  fi
  say "installing pinned tools into .venv (once; about a minute)"
  command -v python3 >/dev/null || die "python3 is required"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "cannot create $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" \
    || die "pip install -r scripts/requirements.txt failed"
  echo "$want" > "$stamp"
  export PATH="$VENV/bin:$PATH"
}

# Credentials and region for the local emulator; moto accepts any credentials.
emulator_env() {
  export AWS_ENDPOINT_URL="$1"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
  export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
  export AWS_REGION="${AWS_REGION:-us-east-1}"
  export AWS_DEFAULT_REGION="$AWS_REGION"
  # The SDK must never reach out for instance metadata or a real profile on these machines.
  export AWS_EC2_METADATA_DISABLED=true
}
