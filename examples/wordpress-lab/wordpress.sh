#!/bin/sh
# The lab's WordPress "container": Debian's wordpress package served by PHP's
# built-in server on port 80 of the pod, configured from the environment. The
# database host is the service name np-test-mariadb, which the pod's
# /etc/hosts resolves (the lab writes it). /etc/wordpress is replaced only in
# this pod's own mount namespace (ip netns exec gave it one).
set -eu
conf="$DATA_DIR/etc-wordpress-$HOSTNAME"
mkdir -p "$conf"
cat >"$conf/config-default.php" <<PHP
<?php
define('DB_NAME', 'wordpress');
define('DB_USER', 'wordpress');
define('DB_PASSWORD', getenv('WORDPRESS_DB_PASSWORD'));
define('DB_HOST', getenv('WORDPRESS_DB_HOST'));
define('WP_HOME', 'http://' . \$_SERVER['HTTP_HOST']);
define('WP_SITEURL', 'http://' . \$_SERVER['HTTP_HOST']);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('AUTH_KEY', 'netpol-lab-1'); define('SECURE_AUTH_KEY', 'netpol-lab-2');
define('LOGGED_IN_KEY', 'netpol-lab-3'); define('NONCE_KEY', 'netpol-lab-4');
define('AUTH_SALT', 'netpol-lab-5'); define('SECURE_AUTH_SALT', 'netpol-lab-6');
define('LOGGED_IN_SALT', 'netpol-lab-7'); define('NONCE_SALT', 'netpol-lab-8');
PHP
mount --bind "$conf" /etc/wordpress
# A dropped database connection must fail in seconds, not minutes.
exec php -d default_socket_timeout=2 -d display_errors=0 -S 0.0.0.0:80 -t /usr/share/wordpress
