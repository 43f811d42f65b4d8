# Sourced by the network-store benchmarks (bench-sshfs.sh, bench-nas.sh): an sshd of their own
# on 127.0.0.1, with fresh keys in a directory they own and remove.
#
#   start_loopback_sshd DIR   sets SSHD_PORT and SSHD_PID; log in as root with DIR/client_key
#   wait_for_port PORT        until something listens on 127.0.0.1:PORT (5 s at most)
#   free_port                 prints a free port on 127.0.0.1

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {
    local _
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

start_loopback_sshd() {
    local dir=$1 sshd
    sshd="$(command -v sshd || echo /usr/sbin/sshd)"
    mkdir -p /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    SSHD_PORT=$(free_port)
    cat >"$dir/sshd_config" <<CONF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile none
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
CONF
    "$sshd" -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
    SSHD_PID=$!
    wait_for_port "$SSHD_PORT"
}
