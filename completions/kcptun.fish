# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_kcptun_global_optspecs
    string join \n v/version h/help
end

function __fish_kcptun_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_kcptun_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_kcptun_using_subcommand
    set -l cmd (__fish_kcptun_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c kcptun -n "__fish_kcptun_needs_command" -s v -l version -d 'print the version'
complete -c kcptun -n "__fish_kcptun_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kcptun -n "__fish_kcptun_needs_command" -f -a "client" -d 'kcptun client: TCP listener tunnelled over KCP/UDP to a kcptun server'
complete -c kcptun -n "__fish_kcptun_needs_command" -f -a "server" -d 'kcptun server: accepts KCP/UDP sessions and forwards streams to a TCP target'
complete -c kcptun -n "__fish_kcptun_needs_command" -f -a "bench" -d 'measure this build: tunnel, sessions, cipher and FEC throughput; soak'
complete -c kcptun -n "__fish_kcptun_needs_command" -f -a "snmp" -d 'show the counters of a running kcptun (through its --ctl socket) or summarise a --snmplog CSV file'
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -s c -l c -l config -d 'config from a JSON (or .yaml/.yml) file, overriding the command line' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -s l -l localaddr -d 'local listen address: host:port, or a unix socket path [default: ":12948"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -s r -l remoteaddr -d 'kcp server address: host:port or host:min-max [default: "vps:29900"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l key -d 'pre-shared secret between client and server [env: KCPTUN_KEY] [default: "it\'s a secrect"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l crypt -d 'aes, aes-128, aes-192, aes-128-gcm, salsa20, blowfish, twofish, cast5, 3des, tea, xtea, xor, sm4, none, null [default: "aes"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l mode -d 'profiles: fast3, fast2, fast, normal, manual [default: "fast"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l QPP -d 'enable Quantum Permutation Pads on stream payloads' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l QPPCount -d 'number of QPP pads (a prime is best) [default: "61"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l conn -d 'number of UDP sessions to the server [default: "1"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l autoexpire -d 'seconds a session takes new connections, 0: forever [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l scavengettl -d 'seconds an expired session may still live [default: "600"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l mtu -d 'maximum UDP payload in bytes [default: "1350"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l ratelimit -d 'bytes per second per session, 0: unlimited [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l sndwnd -d 'send window (packets) [default: "128"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l rcvwnd -d 'receive window (packets) [default: "512"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l datashard -l ds -d 'Reed-Solomon data shards [default: "10"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l parityshard -l ps -d 'Reed-Solomon parity shards [default: "3"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l dscp -d 'DSCP (6 bits) [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l nocomp -d 'disable compression' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l acknodelay -d 'flush ACKs immediately' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l delaywnd -d 'size the send window by queueing delay: short queues behind a bottleneck link (costs goodput on paths without one, most under heavy random loss)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l nodelay -d 'manual mode: nodelay [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l interval -d 'manual mode: interval (ms) [default: "50"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l resend -d 'manual mode: fast resend [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l nc -d 'manual mode: no congestion control [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l sockbuf -d 'per-socket buffer in bytes [default: "4194304"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l smuxver -d 'smux version, 1 or 2 (server default: detect per session) [default: "2"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l smuxbuf -d 'overall de-mux buffer in bytes [default: "4194304"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l framesize -d 'smux max frame size [default: "8192"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l streambuf -d 'per-stream receive buffer in bytes (smux v2) [default: "2097152"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l keepalive -d 'seconds between heartbeats [default: "10"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l closewait -d 'seconds to wait before closing both sides of a connection [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l halfclose -d 'seconds a half-closed connection may stay idle, 0: forever [default: "120"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l snmplog -d 'collect SNMP to this CSV file (Go time layout in the name)' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l snmpperiod -d 'SNMP collect period in seconds [default: "60"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l log -d 'log to this file instead of stderr' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l quiet -d 'suppress the \'stream open/close\' messages' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l ctl -d 'control socket path (for `kcptun snmp`)' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l metrics -d 'serve Prometheus metrics at http://ADDR/metrics (host:port)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l daemon -d 'detach and run in the background' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l pidfile -d 'write the process id to this file' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l tcp -d 'not supported (fake-TCP transport)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -l pprof -d 'not supported (Go profiler)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -s v -l version -d 'print the version'
complete -c kcptun -n "__fish_kcptun_using_subcommand client" -s h -l help -d 'Print help'
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -s c -l c -l config -d 'config from a JSON (or .yaml/.yml) file, overriding the command line' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -s l -l listen -d 'kcp server listen address: host:port or host:min-max [default: ":29900"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -s t -l target -d 'target server address, or a unix socket path [default: "127.0.0.1:12948"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l key -d 'pre-shared secret between client and server [env: KCPTUN_KEY] [default: "it\'s a secrect"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l crypt -d 'aes, aes-128, aes-192, aes-128-gcm, salsa20, blowfish, twofish, cast5, 3des, tea, xtea, xor, sm4, none, null [default: "aes"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l mode -d 'profiles: fast3, fast2, fast, normal, manual [default: "fast"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l QPP -d 'enable Quantum Permutation Pads on stream payloads' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l QPPCount -d 'number of QPP pads (a prime is best) [default: "61"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l mtu -d 'maximum UDP payload in bytes [default: "1350"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l ratelimit -d 'bytes per second per session, 0: unlimited [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l sndwnd -d 'send window (packets) [default: "1024"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l rcvwnd -d 'receive window (packets) [default: "1024"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l datashard -l ds -d 'Reed-Solomon data shards [default: "10"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l parityshard -l ps -d 'Reed-Solomon parity shards [default: "3"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l dscp -d 'DSCP (6 bits) [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l nocomp -d 'disable compression' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l acknodelay -d 'flush ACKs immediately' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l delaywnd -d 'size the send window by queueing delay: short queues behind a bottleneck link (costs goodput on paths without one, most under heavy random loss)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l nodelay -d 'manual mode: nodelay [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l interval -d 'manual mode: interval (ms) [default: "50"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l resend -d 'manual mode: fast resend [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l nc -d 'manual mode: no congestion control [default: "0"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l sockbuf -d 'per-socket buffer in bytes [default: "4194304"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l smuxver -d 'smux version, 1 or 2 (server default: detect per session)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l smuxbuf -d 'overall de-mux buffer in bytes [default: "4194304"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l framesize -d 'smux max frame size [default: "8192"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l streambuf -d 'per-stream receive buffer in bytes (smux v2) [default: "2097152"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l keepalive -d 'seconds between heartbeats [default: "10"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l closewait -d 'seconds to wait before closing both sides of a connection [default: "30"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l halfclose -d 'seconds a half-closed connection may stay idle, 0: forever [default: "120"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l snmplog -d 'collect SNMP to this CSV file (Go time layout in the name)' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l snmpperiod -d 'SNMP collect period in seconds [default: "60"]' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l log -d 'log to this file instead of stderr' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l quiet -d 'suppress the \'stream open/close\' messages' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l ctl -d 'control socket path (for `kcptun snmp`)' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l metrics -d 'serve Prometheus metrics at http://ADDR/metrics (host:port)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l daemon -d 'detach and run in the background' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l pidfile -d 'write the process id to this file' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l tcp -d 'not supported (fake-TCP transport)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -l pprof -d 'not supported (Go profiler)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -s v -l version -d 'print the version'
complete -c kcptun -n "__fish_kcptun_using_subcommand server" -s h -l help -d 'Print help'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and not __fish_seen_subcommand_from tunnel crypt fec soak sessions" -s h -l help -d 'Print help'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and not __fish_seen_subcommand_from tunnel crypt fec soak sessions" -f -a "tunnel" -d 'A loopback tunnel end to end: our client and server as child processes (--vs-go: and Go\'s)'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and not __fish_seen_subcommand_from tunnel crypt fec soak sessions" -f -a "crypt" -d 'Cipher throughput, every method'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and not __fish_seen_subcommand_from tunnel crypt fec soak sessions" -f -a "fec" -d 'FEC encoder/decoder throughput'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and not __fish_seen_subcommand_from tunnel crypt fec soak sessions" -f -a "soak" -d 'Client + server for a while through a lossy path with connection churn; RSS and fds'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and not __fish_seen_subcommand_from tunnel crypt fec soak sessions" -f -a "sessions" -d 'Memory and idle CPU per session: N sessions, idle and after traffic (--vs-go: and Go\'s)'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l crypt -d 'Cipher (same names as `--crypt` of client/server)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l mode -d 'Mode profile: normal, fast, fast2, fast3' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l ds -l datashard -d 'FEC data shards' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l ps -l parityshard -d 'FEC parity shards' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l sndwnd -d 'KCP send window (segments), both sides' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l rcvwnd -d 'KCP receive window (segments), both sides' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l duration -d 'Seconds of bulk transfer in each direction' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l path -d 'Run through an emulated path, both directions, e.g. "delay=20ms,jitter=2ms,loss=2%,rate=100mbit,queue=1mb,reorder=1%" (keys: delay, jitter, loss, burst, rate, queue, reorder)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l path-up -d 'The path from client to server only (overrides --path for that direction)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l path-down -d 'The path from server to client only (overrides --path for that direction)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l nocomp -d 'Disable compression (the default for the bench: the data is incompressible)'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l comp -d 'Enable snappy compression (off by default in the bench)'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l vs-go -d 'Also run the Go binaries (/usr/bin/kcptun-client, -server) and compare'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l restart -d 'Also measure how long a new connection through the client takes to be answered after the server is killed and restarted'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l mixed -d 'With --vs-go, also run the mixed pairs: our client with Go\'s server ("ours-Go") and Go\'s client with our server ("Go-ours")'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l delaywnd -d 'Run our client and server with --delaywnd (the send window sized by queueing delay)'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -l json -d 'Print JSON instead of a table'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from tunnel" -s h -l help -d 'Print help'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from crypt" -l size -d 'Bytes per encrypted datagram' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from crypt" -l json -d 'Print JSON instead of a table'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from crypt" -s h -l help -d 'Print help'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from fec" -l json -d 'Print JSON instead of a table'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from fec" -s h -l help -d 'Print help'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from soak" -l minutes -d 'How long to run, in minutes (fractions allowed, e.g. 0.5)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from soak" -l seconds -d 'How long to run, in seconds (default: 10 minutes)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from soak" -l interval -d 'Seconds between samples of RSS and open fds' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from soak" -l max-rss-growth -d 'Fail if RSS grows more than this many percent after warm-up (client or server)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from soak" -l workers -d 'Connections kept busy at once' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from soak" -l path -d 'The emulated path, both directions (see bench tunnel --path)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from soak" -l path-up -d 'The path from client to server only (overrides --path for that direction)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from soak" -l path-down -d 'The path from server to client only (overrides --path for that direction)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from soak" -s h -l help -d 'Print help'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from sessions" -l bytes -d 'Bytes echoed through every connection in each direction after the idle reading' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from sessions" -l per-client -d 'Most sessions per client process (--conn of each client)' -r
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from sessions" -l ours -d 'The kcptun binary measured as "ours" (default: this one), e.g. an older build to compare' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from sessions" -l echo-target -d 'Internal: run only the echo target and print its address (the bench starts one such child so that the connections\' two ends are spread over two open-files limits)'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from sessions" -l vs-go -d 'Also run the Go binaries (/usr/bin/kcptun-client, -server) and compare'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from sessions" -l json -d 'Print JSON instead of tables'
complete -c kcptun -n "__fish_kcptun_using_subcommand bench; and __fish_seen_subcommand_from sessions" -s h -l help -d 'Print help'
complete -c kcptun -n "__fish_kcptun_using_subcommand snmp" -l ctl -d 'Control socket of a running kcptun client or server (the PATH given to its --ctl)' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand snmp" -l file -d 'Summarise a --snmplog CSV file (latest or 2021 Go kcptun layout)' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand snmp" -l svg -d 'With --file: draw bytes/s and retransmissions/s over time as an SVG chart to OUT' -r -F
complete -c kcptun -n "__fish_kcptun_using_subcommand snmp" -l watch -d 'With --ctl: redraw the rates every second until interrupted'
complete -c kcptun -n "__fish_kcptun_using_subcommand snmp" -l json -d 'Print JSON: the control socket\'s answer (one line per second with --watch), or the summary of --file'
complete -c kcptun -n "__fish_kcptun_using_subcommand snmp" -s h -l help -d 'Print help'
