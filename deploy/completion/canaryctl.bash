# bash completion for canaryctl                      -*- shell-script -*-
#
# Installed by `make install` to
# /usr/share/bash-completion/completions/canaryctl; or: source this file.
#
# Completes the global flags, the verbs, each verb's own flags, and rollout
# names. The global flags also work after the verb (canaryctl status web -o
# json); they are offered before it, their values anywhere. Rollout names come from the running
# agent (`canaryctl status -o json`, through the same --socket / --server /
# --token-file given on the command line), parsed with python3 or, without
# it, sed; with the agent down nothing is offered. No jq needed.

_canaryctl_rollout_names()
{
	local prog=$1
	shift
	local out
	# "$@": the global flags typed so far, so the query goes to the same agent.
	if command -v timeout >/dev/null 2>&1; then
		out=$(timeout 2 "$prog" "$@" -o json status 2>/dev/null) || return 0
	else
		out=$("$prog" "$@" -o json status 2>/dev/null) || return 0
	fi
	[ -n "$out" ] || return 0
	if command -v python3 >/dev/null 2>&1; then
		printf '%s' "$out" | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for r in doc.get("rollouts", []) if isinstance(doc, dict) else []:
    if isinstance(r, dict) and isinstance(r.get("name"), str):
        print(r["name"])
' 2>/dev/null
	else
		# Rollout names are [a-z0-9-] (docs/configuration.md); "name" keys
		# appear nowhere else in the status JSON.
		printf '%s' "$out" | tr ',{' '\n\n' |
			sed -n 's/^[[:space:]]*"name"[[:space:]]*:[[:space:]]*"\([a-z0-9-]*\)".*/\1/p'
	fi
}

# COMPREPLY from compgen, one word a line (file names may hold spaces).
_canaryctl_reply()
{
	mapfile -t COMPREPLY < <(compgen "$@")
}

_canaryctl()
{
	local cur prev prog i w verb="" verb_idx=0
	local -a globals=()
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=""
	[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
	prog=${COMP_WORDS[0]}

	local global_flags="--socket --server --token-file --bpffs -o --output --help --version"
	local verbs="status promote pause resume abort retry set-weight history plan maps flows attachments emergency-rollback emergency-clear uninstall"

	# Find the verb: the first word that is neither a global flag nor a flag's
	# value. Remember the global flags to reuse them for the name query.
	i=1
	while [ "$i" -lt "$COMP_CWORD" ]; do
		w=${COMP_WORDS[i]}
		case $w in
		--socket | --server | --token-file | --bpffs | -o | --output)
			globals+=("$w" "${COMP_WORDS[i + 1]}")
			i=$((i + 2))
			continue
			;;
		--socket=* | --server=* | --token-file=* | --bpffs=* | --output=* | -o?*)
			globals+=("$w")
			;;
		-*) ;;
		*)
			verb=$w
			verb_idx=$i
			break
			;;
		esac
		i=$((i + 1))
	done
	# The name query must print JSON whatever -o the user chose.
	local -a query=()
	i=0
	while [ "$i" -lt "${#globals[@]}" ]; do
		case ${globals[i]} in
		-o | --output) i=$((i + 2)) ;;
		--output=* | -o?*) i=$((i + 1)) ;;
		*)
			query+=("${globals[i]}")
			i=$((i + 1))
			;;
		esac
	done

	# Values of global flags.
	if [ -z "$verb" ]; then
		case $prev in
		--socket | --token-file)
			compopt -o filenames 2>/dev/null
			_canaryctl_reply -f -- "$cur"
			return 0
			;;
		--bpffs)
			compopt -o filenames 2>/dev/null
			_canaryctl_reply -d -- "$cur"
			return 0
			;;
		--server)
			_canaryctl_reply -W "http://127.0.0.1:9090" -- "$cur"
			return 0
			;;
		-o | --output)
			_canaryctl_reply -W "json yaml text" -- "$cur"
			return 0
			;;
		esac
		if [[ $cur == -* ]]; then
			_canaryctl_reply -W "$global_flags" -- "$cur"
		else
			_canaryctl_reply -W "$verbs" -- "$cur"
		fi
		return 0
	fi

	# Values of flags after the verb: the global ones and the verb's own.
	case $prev in
	-o | --output)
		_canaryctl_reply -W "json yaml text" -- "$cur"
		return 0
		;;
	--socket | --token-file)
		compopt -o filenames 2>/dev/null
		_canaryctl_reply -f -- "$cur"
		return 0
		;;
	--bpffs)
		compopt -o filenames 2>/dev/null
		_canaryctl_reply -d -- "$cur"
		return 0
		;;
	--track | --version)
		[ "$verb" = flows ] && _canaryctl_reply -W "stable canary" -- "$cur"
		return 0
		;;
	--timeout)
		_canaryctl_reply -W "30s 5m 30m 1h" -- "$cur"
		return 0
		;;
	--server | --errors | --latency | --power | --target) return 0 ;;
	esac

	# Positional arguments after the verb, not counting flags and their values.
	local npos=0
	i=$((verb_idx + 1))
	while [ "$i" -lt "$COMP_CWORD" ]; do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*)
			case ${COMP_WORDS[i - 1]} in
			--connections | --track | --version | --timeout | --errors | --latency | \
				--power | --target | -o | --output | --socket | --server | \
				--token-file | --bpffs) ;;
			*) npos=$((npos + 1)) ;;
			esac
			;;
		esac
		i=$((i + 1))
	done

	case $verb in
	status)
		if [[ $cur == -* ]]; then
			_canaryctl_reply -W "--watch --until-done --timeout" -- "$cur"
		elif [ "$npos" -eq 0 ]; then
			_canaryctl_reply -W "$(_canaryctl_rollout_names "$prog" "${query[@]}")" -- "$cur"
		fi
		;;
	promote)
		if [[ $cur == -* ]] || [ "$npos" -ge 1 ]; then
			_canaryctl_reply -W "--full" -- "$cur"
		else
			_canaryctl_reply -W "$(_canaryctl_rollout_names "$prog" "${query[@]}")" -- "$cur"
		fi
		;;
	flows)
		if [[ $cur == -* ]]; then
			_canaryctl_reply -W "--track" -- "$cur"
		elif [ "$npos" -eq 0 ]; then
			_canaryctl_reply -W "$(_canaryctl_rollout_names "$prog" "${query[@]}")" -- "$cur"
		fi
		;;
	plan)
		if [[ $cur == -* ]]; then
			_canaryctl_reply -W "--errors --latency --power --target" -- "$cur"
		elif [ "$npos" -eq 0 ]; then
			_canaryctl_reply -W "$(_canaryctl_rollout_names "$prog" "${query[@]}")" -- "$cur"
		fi
		;;
	pause | resume | abort | retry | history | emergency-clear)
		if [ "$npos" -eq 0 ] && [[ $cur != -* ]]; then
			_canaryctl_reply -W "$(_canaryctl_rollout_names "$prog" "${query[@]}")" -- "$cur"
		fi
		;;
	set-weight)
		if [ "$npos" -eq 0 ]; then
			_canaryctl_reply -W "$(_canaryctl_rollout_names "$prog" "${query[@]}")" -- "$cur"
		elif [ "$npos" -eq 1 ]; then
			_canaryctl_reply -W "0 1 5 10 25 50 75 100" -- "$cur"
		fi
		;;
	emergency-rollback)
		if [ "$prev" = --connections ]; then
			_canaryctl_reply -W "reset drain" -- "$cur"
		elif [[ $cur == -* ]] || [ "$npos" -ge 1 ]; then
			_canaryctl_reply -W "--connections" -- "$cur"
		else
			_canaryctl_reply -W "$(_canaryctl_rollout_names "$prog" "${query[@]}")" -- "$cur"
		fi
		;;
	maps | attachments | uninstall) ;;
	esac
	return 0
}

complete -F _canaryctl canaryctl
