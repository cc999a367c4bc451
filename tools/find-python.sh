#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain and exit 1.
# Tries, in order: $PYTHON, python3.14..python3.12 and python3 on PATH (pyenv shims are
# tried with the matching PYENV_VERSION), then interpreters installed under pyenv.
set -u
ok() { "$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
resolve() { "$@" -c 'import sys; print(sys.executable)' 2>/dev/null; }
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
candidates+=(python3.14 python3.13 python3.12 python3)
for c in "${candidates[@]}"; do
  if command -v "$c" >/dev/null 2>&1 && ok "$c"; then resolve "$c"; exit 0; fi
done
root=$( (command -v pyenv >/dev/null 2>&1 && pyenv root) || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for v in $(ls -1 "$root/versions" 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])\.[0-9]+$' | sort -t. -k2,2nr -k3,3nr); do
  py="$root/versions/$v/bin/python3"
  if [ -x "$py" ] && ok "$py"; then echo "$py"; exit 0; fi
  shim="python$(echo "$v" | cut -d. -f1-2)"
  if command -v "$shim" >/dev/null 2>&1 && PYENV_VERSION="$v" ok "$shim"; then
    PYENV_VERSION="$v" resolve "$shim"; exit 0
  fi
done
echo "error: nutrimeta needs Python >= 3.12 and none was found." >&2
echo "       Install one (e.g. 'pyenv install 3.12' or your distribution's python3.12)," >&2
echo "       or point to it with: make PYTHON=/path/to/python3.12 <target>" >&2
exit 1
