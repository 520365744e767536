#!/bin/sh
# The lab's MariaDB "container": Debian's mariadbd in the pod's network
# namespace, data in $DATA_DIR (initialised on first start, kept across
# restarts), the WordPress database and user created once it answers.
set -eu
mkdir -p "$DATA_DIR"
if [ ! -d "$DATA_DIR/mysql" ]; then
  mariadb-install-db --no-defaults --datadir="$DATA_DIR" --user=root \
    --auth-root-authentication-method=socket --skip-test-db >"$DATA_DIR/install.log" 2>&1
fi
(
  i=0
  while [ $i -lt 150 ]; do
    if [ -S "$DATA_DIR/mysqld.sock" ] && mariadb --no-defaults -S "$DATA_DIR/mysqld.sock" -u root -e "
        CREATE DATABASE IF NOT EXISTS wordpress;
        CREATE USER IF NOT EXISTS 'wordpress'@'%' IDENTIFIED BY '$MARIADB_PASSWORD';
        GRANT ALL ON wordpress.* TO 'wordpress'@'%';" 2>/dev/null; then
      exit 0
    fi
    i=$((i + 1))
    sleep 0.2
  done
) &
exec mariadbd --no-defaults --user=root --datadir="$DATA_DIR" --socket="$DATA_DIR/mysqld.sock" \
  --pid-file="$DATA_DIR/mysqld.pid" --bind-address=0.0.0.0 --port=3306 --skip-name-resolve \
  --log-error="$DATA_DIR/error.log"
