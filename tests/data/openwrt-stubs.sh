# openwrt-stubs.sh: small stand-ins for the OpenWrt shell APIs that packaging/openwrt uses, so its
# scripts run under any POSIX sh in the tests: config_load / config_get / config_get_bool /
# config_foreach (from /lib/functions.sh; config_load parses the UCI text format itself instead of
# calling `uci export`) and json_init / json_add_string / json_add_int / json_add_boolean / json_dump
# (from jshn), plus procd_* and logger that print what they were given.
#
# Storage follows /lib/functions.sh: section names in CONFIG_SECTIONS, values in
# CONFIG_<section>_<option>, the section type in CONFIG_<section>_TYPE. The JSON stand-ins are
# stricter than jshn on purpose: a non-integer json_add_int, a non-0/1 json_add_boolean or a key
# added twice fails (status 1, message on stderr), so a converter bug cannot hide.

CONFIG_SECTIONS=""
CONFIG_NUM_SECTIONS=0
STUB_SECTION=""

stub_die() {
	echo "openwrt-stubs: $*" >&2
	return 1
}

# stub_is_name WORD: a UCI section/option name ([A-Za-z0-9_]+), safe to put in a variable name.
stub_is_name() {
	case "$1" in
	'' | *[!A-Za-z0-9_]*) return 1 ;;
	esac
	return 0
}

config_load() {
	local file="$1" line
	case "$file" in
	*/*) ;;
	*) file="${UCI_CONFIG_DIR:-/etc/config}/$file" ;;
	esac
	[ -r "$file" ] || {
		stub_die "cannot read $file"
		return 1
	}
	while IFS= read -r line || [ -n "$line" ]; do
		# The UCI file syntax quotes like the shell: bare words, '...', "...", '\'' inside '...',
		# and a '#' starting a word begins a comment.
		eval "set -- $line" || {
			stub_die "$file: cannot parse: $line"
			return 1
		}
		[ $# -gt 0 ] || continue
		case "$1" in
		package) ;;
		config)
			CONFIG_NUM_SECTIONS=$((CONFIG_NUM_SECTIONS + 1))
			STUB_SECTION="${3:-cfg$CONFIG_NUM_SECTIONS}"
			stub_is_name "$STUB_SECTION" || {
				stub_die "$file: bad section name '$STUB_SECTION'"
				return 1
			}
			CONFIG_SECTIONS="${CONFIG_SECTIONS:+$CONFIG_SECTIONS }$STUB_SECTION"
			config_set "$STUB_SECTION" TYPE "$2"
			;;
		option)
			[ -n "$STUB_SECTION" ] && stub_is_name "$2" || {
				stub_die "$file: bad option line: $line"
				return 1
			}
			config_set "$STUB_SECTION" "$2" "$3"
			;;
		list)
			[ -n "$STUB_SECTION" ] && stub_is_name "$2" || {
				stub_die "$file: bad list line: $line"
				return 1
			}
			eval "stub_old=\"\${CONFIG_${STUB_SECTION}_$2:-}\""
			config_set "$STUB_SECTION" "$2" "${stub_old:+$stub_old }$3"
			;;
		*)
			stub_die "$file: unknown keyword '$1'"
			return 1
			;;
		esac
	done <"$file"
}

config_set() {
	stub_is_name "$1" && stub_is_name "$2" || return 1
	eval "CONFIG_$1_$2=\$3"
}

# config_get VAR SECTION OPTION [DEFAULT]
config_get() {
	if stub_is_name "$2" && stub_is_name "$3"; then
		eval "$1=\"\${CONFIG_$2_$3:-\$4}\""
	else
		eval "$1=\$4"
	fi
}

# config_get_bool VAR SECTION OPTION [DEFAULT]
config_get_bool() {
	local stub_b
	config_get stub_b "$2" "$3" "$4"
	case "$stub_b" in
	1 | on | true | yes | enabled) stub_b=1 ;;
	0 | off | false | no | disabled) stub_b=0 ;;
	*) stub_b="$4" ;;
	esac
	eval "$1=\$stub_b"
}

# config_foreach FUNCTION [TYPE [ARGS...]]
config_foreach() {
	local stub_fn="$1" stub_type stub_sec stub_t
	shift
	stub_type="$1"
	[ $# -gt 0 ] && shift
	for stub_sec in $CONFIG_SECTIONS; do
		config_get stub_t "$stub_sec" TYPE
		[ -z "$stub_type" ] || [ "$stub_t" = "$stub_type" ] || continue
		"$stub_fn" "$stub_sec" "$@"
	done
}

json_init() {
	STUB_JSON=""
	STUB_JSON_KEYS=" "
}

stub_json_quote() {
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g')"
}

stub_json_add() {
	case "$STUB_JSON_KEYS" in
	*" $1 "*)
		stub_die "json key '$1' added twice"
		return 1
		;;
	esac
	STUB_JSON_KEYS="$STUB_JSON_KEYS$1 "
	STUB_JSON="${STUB_JSON:+$STUB_JSON, }$(stub_json_quote "$1"): $2"
}

json_add_string() {
	stub_json_add "$1" "$(stub_json_quote "$2")"
}

json_add_int() {
	local stub_d="${2#-}"
	case "$stub_d" in
	'' | *[!0-9]*)
		stub_die "json_add_int $1: '$2' is not an integer"
		return 1
		;;
	esac
	stub_json_add "$1" "$2"
}

json_add_boolean() {
	case "$2" in
	1) stub_json_add "$1" true ;;
	0) stub_json_add "$1" false ;;
	*)
		stub_die "json_add_boolean $1: '$2' is not 0 or 1"
		return 1
		;;
	esac
}

json_dump() {
	printf "{ %s }\n" "$STUB_JSON"
}

logger() {
	printf "logger: %s\n" "$*" >&2
}

# procd stand-ins: one line per call on stdout, each argument in [brackets], so a test can read
# exactly what the init script asked for.
stub_print_call() {
	local stub_a
	printf '%s' "$1"
	shift
	for stub_a in "$@"; do
		printf ' [%s]' "$stub_a"
	done
	printf '\n'
}

procd_open_instance() {
	stub_print_call procd_open_instance "$@"
}

procd_set_param() {
	stub_print_call procd_set_param "$@"
}

procd_close_instance() {
	stub_print_call procd_close_instance "$@"
}

procd_add_reload_trigger() {
	stub_print_call procd_add_reload_trigger "$@"
}
