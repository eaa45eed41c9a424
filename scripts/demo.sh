#!/usr/bin/env bash
# A five-minute tour of dbkeeper: install it, make a small shop database, back it up,
# check the backup, restore it and query the copy. Run from anywhere: bash scripts/demo.sh
# Everything it writes goes to ./demo/ (wiped first, git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

# Print a command the way you would type it (bold on a terminal), then run it.
bold=""; plain=""
if [ -t 1 ]; then bold=$'\e[1m'; plain=$'\e[0m'; fi
run() {
  local word line="$"
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then line+=" $word"
    elif [[ $word != *[\"\$\`\\]* ]]; then line+=" \"$word\""
    else line+=" '${word//\'/\'\\\'\'}'"; fi
  done
  printf '\n%s%s%s\n' "$bold" "$line" "$plain"
  "$@"
}

run bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
rm -rf demo && mkdir demo

run python scripts/sample_db.py demo/shop.db --size 5MB
run dbkeeper backup sqlite:///demo/shop.db --dir demo/backups
run dbkeeper backups list --dir demo/backups
run dbkeeper verify latest --dir demo/backups
run dbkeeper verify latest --deep --dir demo/backups
run dbkeeper restore latest sqlite:///demo/restored.db --dir demo/backups
run dbkeeper query sqlite:///demo/restored.db "
  SELECT c.first_name || ' ' || c.last_name AS customer, c.city,
         count(*) AS orders, printf('%.2f', sum(o.total)) AS total
  FROM customers c JOIN orders o ON o.customer_id = c.id
  GROUP BY c.id ORDER BY sum(o.total) DESC LIMIT 5"

printf '\nDone. The backup is in demo/backups/ (a zstd file plus manifest.json); try: dbkeeper --help\n'
