#!/bin/sh
# Initialises the data directory on first start, creates the application's database and
# user once the server answers, and runs mariadbd in the foreground.
set -eu
data=/var/lib/mysql
if [ ! -d "$data/mysql" ]; then
  mariadb-install-db --no-defaults --datadir="$data" --user=root \
    --auth-root-authentication-method=socket --skip-test-db >/dev/null
fi
(
  i=0
  while [ $i -lt 300 ]; do
    if mariadb --no-defaults -S /run/mysqld.sock -u root -e "
        CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;
        CREATE USER IF NOT EXISTS '$MARIADB_USER'@'%' IDENTIFIED BY '$MARIADB_PASSWORD';
        GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'%';" 2>/dev/null; then
      echo "entrypoint: database $MARIADB_DATABASE and user $MARIADB_USER ready"
      exit 0
    fi
    i=$((i + 1))
    sleep 0.2
  done
  echo "entrypoint: the server never answered" >&2
) &
exec mariadbd --no-defaults --user=root --datadir="$data" --socket=/run/mysqld.sock \
  --pid-file=/run/mysqld.pid --bind-address=0.0.0.0 --port=3306 --skip-name-resolve
