# kcptun-uci2json.sh: turn one section of /etc/config/kcptun into a kcptun JSON config.
#
# POSIX sh, sourced (by /etc/init.d/kcptun, or by the tests with stand-ins). It uses only
# config_get / config_get_bool / config_foreach (OpenWrt /lib/functions.sh, after config_load) and
# json_init / json_add_string / json_add_int / json_add_boolean / json_dump (jshn); it defines
# functions and KCPTUN_* tables, nothing else. Call order: config_load kcptun, then
# kcptun_foreach_instance CALLBACK (CALLBACK is called as "CALLBACK SECTION client|server" for each
# enabled instance) and kcptun_section_json SECTION [client|server] (JSON on stdout; on a bad value
# it prints "kcptun: ..." on stderr and returns 1, having printed nothing).
#
# Mapping (mechanical): a UCI option is named after the Go kcptun JSON key, with "_" for "-" (UCI
# names cannot hold "-": qpp_count -> "qpp-count"). Options listed in *_STR become JSON strings,
# *_INT JSON numbers (must be decimal integers), *_BOOL JSON true/false (UCI 1/0, yes/no, on/off,
# true/false, enabled/disabled). Unset or empty options are left out, so kcptun's defaults apply.
# Section types: "client" and "server"; a luci-app-kcptun "servers" section is a client.
#
# Older schemas are read too, only where the new key is unset:
#   client: localaddr  <- bind_address|listen_addr ":" local_port|listen_port
#           remoteaddr <- server_addr|server ":" server_port
#   server: listen     <- ":" listen              (when listen is a bare port number)
#           target     <- target ":" target_port
# Enabling: "enabled" if set, else the inverse of "disabled" if set, else enabled. A luci-app-kcptun
# "servers" section runs when a "general" section names it in its "server" option.

KCPTUN_COMMON_STR="key crypt mode log snmplog ctl metrics"
KCPTUN_COMMON_INT="mtu ratelimit sndwnd rcvwnd datashard parityshard dscp nodelay interval resend nc
 sockbuf smuxver smuxbuf framesize streambuf keepalive snmpperiod qpp_count closewait"
KCPTUN_COMMON_BOOL="nocomp acknodelay delaywnd quiet tcp pprof qpp"
KCPTUN_CLIENT_INT="conn autoexpire scavengettl"

kcptun_err() {
	printf 'kcptun: %s\n' "$*" >&2
}

# kcptun_json_key OPTION: the JSON key for a UCI option name.
kcptun_json_key() {
	case "$1" in
	*_*) printf '%s\n' "$1" | tr '_' '-' ;;
	*) printf '%s\n' "$1" ;;
	esac
}

# kcptun_is_int VALUE: true for an optionally signed decimal integer.
kcptun_is_int() {
	local digits="${1#-}"
	case "$digits" in
	'' | *[!0-9]*) return 1 ;;
	esac
	return 0
}

# kcptun_hostport HOST PORT: "HOST:PORT", bracketing a bare IPv6 address; ":PORT" for no host.
kcptun_hostport() {
	case "$1" in
	\[*) printf '%s:%s\n' "$1" "$2" ;;
	*:*) printf '[%s]:%s\n' "$1" "$2" ;;
	*) printf '%s:%s\n' "$1" "$2" ;;
	esac
}

# kcptun_section_enabled SECTION
kcptun_section_enabled() {
	local v
	config_get v "$1" enabled
	if [ -n "$v" ]; then
		config_get_bool v "$1" enabled 0
		[ "$v" = 1 ]
		return
	fi
	config_get_bool v "$1" disabled 0
	[ "$v" = 0 ]
}

kcptun__each_own() {
	# $1 section, $2 type, $3 callback
	kcptun_section_enabled "$1" || return 0
	"$3" "$1" "$2"
}

kcptun__each_legacy() {
	# $1 general section, $2 callback
	local active type
	config_get active "$1" server
	[ -n "$active" ] && [ "$active" != nil ] || return 0
	config_get type "$active" TYPE
	if [ "$type" != servers ]; then
		kcptun_err "general section '$1' selects '$active', which is not a 'servers' section"
		return 0
	fi
	"$2" "$active" client
}

# kcptun_foreach_instance CALLBACK: CALLBACK SECTION TYPE for every enabled instance, servers first.
kcptun_foreach_instance() {
	config_foreach kcptun__each_own server server "$1"
	config_foreach kcptun__each_own client client "$1"
	config_foreach kcptun__each_legacy general "$1"
}

# kcptun_section_user SECTION: the user to run the instance as ("" = root): the section's "user",
# else, for a luci-app-kcptun "servers" section, the "daemon_user" of the general section.
kcptun_section_user() {
	local user type
	config_get user "$1" user
	config_get type "$1" TYPE
	if [ -z "$user" ] && [ "$type" = servers ]; then
		KCPTUN__USER=""
		config_foreach kcptun__general_user general
		user="$KCPTUN__USER"
	fi
	printf '%s\n' "$user"
}

kcptun__general_user() {
	config_get KCPTUN__USER "$1" daemon_user
}

# kcptun__add_str SECTION OPTION...
kcptun__add_str() {
	local sec="$1" opt v
	shift
	for opt in "$@"; do
		config_get v "$sec" "$opt"
		[ -n "$v" ] && json_add_string "$(kcptun_json_key "$opt")" "$v"
	done
	return 0
}

kcptun__add_int() {
	local sec="$1" opt v
	shift
	for opt in "$@"; do
		config_get v "$sec" "$opt"
		[ -n "$v" ] || continue
		if ! kcptun_is_int "$v"; then
			kcptun_err "section '$sec': option '$opt' must be an integer, not '$v'"
			return 1
		fi
		json_add_int "$(kcptun_json_key "$opt")" "$v"
	done
	return 0
}

kcptun__add_bool() {
	local sec="$1" opt v
	shift
	for opt in "$@"; do
		config_get v "$sec" "$opt"
		[ -n "$v" ] || continue
		config_get_bool v "$sec" "$opt" ""
		if [ -z "$v" ]; then
			config_get v "$sec" "$opt"
			kcptun_err "section '$sec': option '$opt' must be a boolean (1/0), not '$v'"
			return 1
		fi
		json_add_boolean "$(kcptun_json_key "$opt")" "$v"
	done
	return 0
}

# kcptun__client_addrs SECTION: writes localaddr/remoteaddr, taking the older option pairs into account.
kcptun__client_addrs() {
	local sec="$1" v host port
	config_get v "$sec" localaddr
	if [ -n "$v" ]; then
		json_add_string localaddr "$v"
	else
		config_get port "$sec" local_port
		[ -n "$port" ] || config_get port "$sec" listen_port
		config_get host "$sec" bind_address
		[ -n "$host" ] || config_get host "$sec" listen_addr
		[ -n "$port" ] && json_add_string localaddr "$(kcptun_hostport "$host" "$port")"
	fi
	config_get v "$sec" remoteaddr
	if [ -n "$v" ]; then
		json_add_string remoteaddr "$v"
	else
		config_get host "$sec" server_addr
		[ -n "$host" ] || config_get host "$sec" server
		config_get port "$sec" server_port
		if [ -n "$host" ] && [ -n "$port" ]; then
			json_add_string remoteaddr "$(kcptun_hostport "$host" "$port")"
		elif [ -n "$host" ]; then
			json_add_string remoteaddr "$host"
		fi
	fi
	return 0
}

# kcptun__server_addrs SECTION: writes listen/target, taking the older forms into account.
kcptun__server_addrs() {
	local sec="$1" v port
	config_get v "$sec" listen
	if [ -n "$v" ]; then
		case "$v" in
		*[!0-9]*) json_add_string listen "$v" ;;
		*) json_add_string listen ":$v" ;;
		esac
	fi
	config_get v "$sec" target
	config_get port "$sec" target_port
	if [ -n "$port" ]; then
		json_add_string target "$(kcptun_hostport "${v:-127.0.0.1}" "$port")"
	elif [ -n "$v" ]; then
		json_add_string target "$v"
	fi
	return 0
}

# kcptun_section_json SECTION [client|server]: the JSON config of SECTION on stdout.
kcptun_section_json() {
	local sec="$1" type="$2" out
	[ -n "$type" ] || config_get type "$sec" TYPE
	case "$type" in
	client | servers) type=client ;;
	server) ;;
	*)
		kcptun_err "section '$sec' has type '$type'; expected client or server"
		return 1
		;;
	esac
	json_init
	if [ "$type" = client ]; then
		kcptun__client_addrs "$sec" &&
			kcptun__add_int "$sec" $KCPTUN_CLIENT_INT || return 1
	else
		kcptun__server_addrs "$sec" || return 1
	fi
	kcptun__add_str "$sec" $KCPTUN_COMMON_STR &&
		kcptun__add_int "$sec" $KCPTUN_COMMON_INT &&
		kcptun__add_bool "$sec" $KCPTUN_COMMON_BOOL || return 1
	out="$(json_dump)" || return 1
	printf '%s\n' "$out"
}
