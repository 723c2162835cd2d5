#!/bin/sh
# The account from the environment, and no guest-only-from-localhost rule in the way of a container network.
set -eu
cat > /etc/rabbitmq/rabbitmq.conf <<CONF
default_user = ${RABBITMQ_DEFAULT_USER:-shop}
default_pass = ${RABBITMQ_DEFAULT_PASS:?set RABBITMQ_DEFAULT_PASS}
loopback_users = none
listeners.tcp.default = 5672
CONF
chown rabbitmq:rabbitmq /etc/rabbitmq/rabbitmq.conf /var/lib/rabbitmq
exec su rabbitmq -s /bin/sh -c "exec rabbitmq-server"
