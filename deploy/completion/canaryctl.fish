# fish completion for canaryctl.
#
# Installed by `make install` to
# /usr/share/fish/vendor_completions.d/canaryctl.fish; or copy it to
# ~/.config/fish/completions/. Completes the global flags (before or after
# the verb), the verbs, each verb's own flags and values, and rollout names
# from the running agent (`canaryctl -o json status`, through the --socket /
# --server / --token-file given on the command line), parsed with python3.

set -l __canaryctl_verbs status promote pause resume abort retry set-weight history plan maps flows attachments emergency-rollback emergency-clear uninstall

# The rollout names, asked of the agent the command line names.
function __canaryctl_rollouts
    set -l tokens (commandline -opc)
    set -l query
    set -l i 2
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case --socket --server --token-file
                set -a query $tokens[$i]
                set i (math $i + 1)
                test $i -le (count $tokens); and set -a query $tokens[$i]
            case '--socket=*' '--server=*' '--token-file=*'
                set -a query $tokens[$i]
        end
        set i (math $i + 1)
    end
    timeout 2 $tokens[1] $query -o json status 2>/dev/null | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for r in doc.get("rollouts", []) if isinstance(doc, dict) else []:
    if isinstance(r, dict) and isinstance(r.get("name"), str):
        print(r["name"])
' 2>/dev/null
end

complete -c canaryctl -f

# Global flags, anywhere.
complete -c canaryctl -l socket -r -F -d 'the agent API UNIX socket'
complete -c canaryctl -l server -x -a 'http://127.0.0.1:9090' -d 'the agent API over TCP'
complete -c canaryctl -l token-file -r -F -d 'bearer token for --server'
complete -c canaryctl -l bpffs -x -a '(__fish_complete_directories)' -d 'bpffs directory of the pins'
complete -c canaryctl -s o -l output -x -a 'json yaml text' -d 'output format'
complete -c canaryctl -l help -d 'print the usage'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -l version -d 'print the version'

# Verbs.
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a status -d 'rollouts; one in full'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a promote -d 'next step'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a pause -d 'hold the steps'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a resume -d 'go on'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a abort -d 'roll back'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a retry -d 'start again after an abort'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a set-weight -d 'set the canary weight by hand'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a history -d 'past revisions'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a plan -d 'how long each step must last'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a maps -d 'services, weights, counters'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a flows -d 'tracked connections'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a attachments -d 'where the programs are attached'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a emergency-rollback -d 'canary weight to 0 now'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a emergency-clear -d 'release the kill switch'
complete -c canaryctl -n "not __fish_seen_subcommand_from $__canaryctl_verbs" -a uninstall -d 'detach and remove the pins'

# Rollout names after the verbs that take one.
complete -c canaryctl -n "__fish_seen_subcommand_from status promote pause resume abort retry set-weight history plan flows emergency-rollback emergency-clear" -a '(__canaryctl_rollouts)'

# Each verb's own flags.
complete -c canaryctl -n "__fish_seen_subcommand_from status" -l watch -d 'redraw every second'
complete -c canaryctl -n "__fish_seen_subcommand_from status" -l until-done -d 'stop when Healthy (0) or Degraded (1)'
complete -c canaryctl -n "__fish_seen_subcommand_from status" -l timeout -x -a '30s 5m 30m 1h' -d 'with --until-done: exit 3 after'
complete -c canaryctl -n "__fish_seen_subcommand_from promote" -l full -d 'straight to 100% and done'
complete -c canaryctl -n "__fish_seen_subcommand_from plan" -l errors -x -d 'times the errors to catch'
complete -c canaryctl -n "__fish_seen_subcommand_from plan" -l latency -x -d 'fraction slower to catch'
complete -c canaryctl -n "__fish_seen_subcommand_from plan" -l power -x -d 'probability to catch'
complete -c canaryctl -n "__fish_seen_subcommand_from plan" -l target -x -d 'total pause to fit in'
complete -c canaryctl -n "__fish_seen_subcommand_from flows" -l track -x -a 'stable canary' -d 'one version only'
complete -c canaryctl -n "__fish_seen_subcommand_from emergency-rollback" -l connections -x -a 'reset drain' -d 'what the canary connections do'
