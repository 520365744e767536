#!/bin/sh
# Writes WordPress's configuration from the environment and serves it on port 80. A dropped
# database connection fails in seconds (default_socket_timeout), so WordPress answers 500
# and its liveness probe fails, as in the guide.
set -eu
cat >/etc/wordpress/config-default.php <<PHP
<?php
define('DB_NAME', getenv('WORDPRESS_DB_NAME'));
define('DB_USER', getenv('WORDPRESS_DB_USER'));
define('DB_PASSWORD', getenv('WORDPRESS_DB_PASSWORD'));
define('DB_HOST', getenv('WORDPRESS_DB_HOST'));
define('WP_HOME', 'http://' . (\$_SERVER['HTTP_HOST'] ?? 'localhost'));
define('WP_SITEURL', 'http://' . (\$_SERVER['HTTP_HOST'] ?? 'localhost'));
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('AUTH_KEY', 'np-1'); define('SECURE_AUTH_KEY', 'np-2');
define('LOGGED_IN_KEY', 'np-3'); define('NONCE_KEY', 'np-4');
define('AUTH_SALT', 'np-5'); define('SECURE_AUTH_SALT', 'np-6');
define('LOGGED_IN_SALT', 'np-7'); define('NONCE_SALT', 'np-8');
PHP
exec php -d default_socket_timeout=2 -d mysqli.default_socket_timeout=2 -d display_errors=0 \
  -S 0.0.0.0:80 -t /usr/share/wordpress
