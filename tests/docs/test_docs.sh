#!/usr/bin/env bash
# Every command shown in README.md and docs/*.md works as shown.
#
# How (also in docs/testing.md, "Checking the docs"): the fenced blocks and
# links of README.md and docs/*.md are read by the Python below, and
#
#  1. Rollout examples: every ```yaml block containing `kind: Rollout`, and
#     every heredoc body in a ```sh/```bash block containing `kind: Rollout`
#     (the README quick start's `tee ... <<'YAML'`), is written to a file in a
#     temp dir and must pass `build/canaryd --config FILE --check-config`
#     (exit 0, "FILE: N rollout(s), valid" with N = its `kind: Rollout`
#     documents). A block preceded by `<!-- invalid-example -->` must fail
#     it instead (exit 1 with an error on stderr).
#  2. Command lines: in ```sh, ```bash and ```console blocks (console: only
#     the "$ " prompt lines), each line (joined at trailing "\", heredoc bodies
#     skipped) loses its comments, and is cut at | ; && || & ( ); each
#     command then loses its redirections and leading sudo/env/time/VAR=value.
#     Commands running canaryd, canaryctl, make or bpftool (any path) are
#     checked without being run:
#       canaryd   - every -flag is listed in `build/canaryd --help`;
#       canaryctl - options before the verb are the usage's global ones, the
#                   verb is in the usage's verb list, flags after it are
#                   that verb's own or global ones (each verb takes both);
#       kubectl canary - the same against `build/kubectl-canary --help`;
#       make      - every target has a rule in make's database (`make -pq`:
#                   the Makefile and its includes) and passes `make -n`;
#       bpftool   - `bpftool OBJECT CMD` is listed by `bpftool OBJECT help`,
#                   and `pinned /sys/fs/bpf/canaryd/MAP` names a map of the
#                   skeleton under canaryd's default --bpffs.
#     Each unknown flag, verb, target or command is a "not ok" with FILE:LINE.
#  3. Blocks preceded by `<!-- runnable -->` (sh/bash/console only) are run
#     for real: `bash -e -o pipefail`, `timeout 120`, stdin /dev/null, in a
#     scratch dir holding symlinks to the repository's top-level entries (so
#     `build/canaryd` works and new files land in the scratch dir), with
#     build/ first in PATH. They must exit 0. Only safe blocks are marked:
#     nothing attaches to this machine's interfaces, no traffic outside lab
#     namespaces, nothing long. The README quick start (eth0) is covered by
#     1 and 2 only; `make demo`/`make test` are run by the suites themselves.
#  4. Links: every [text](target) / ![img](target) / [ref]: target outside
#     code, to a local path, resolves from the linking file; a #anchor must
#     be a heading id (GitHub's rules) of the target (or of the same file).
#
# A stray marker (not followed by a suitable block) is reported too.
# Output: TAP lines "ok - ..." / "not ok - ..."; exit 1 if any failed.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
	if [ "${CI:-}" = true ]; then
		echo "not ok - docs: needs root/CAP_BPF, and CI=true: failing instead of skipping"
		exit 1
	fi
	echo "skipped: needs root/CAP_BPF"
	exit 0
fi

SCRATCH=$(mktemp -d /tmp/canaryd-docs.XXXXXX) || exit 1
trap 'rm -rf "$SCRATCH"' EXIT

# Build first (a no-op when up to date, e.g. under "make test-docs").
if ! make -s all >"$SCRATCH/make.log" 2>&1 || [ ! -x build/canaryd ] || [ ! -x build/canaryctl ]; then
	echo "not ok - make builds build/canaryd and build/canaryctl"
	tail -n 20 "$SCRATCH/make.log" | sed 's/^/# /'
	exit 1
fi

ROOT="$ROOT" SCRATCH="$SCRATCH" python3 - <<'PY'
import os, re, shlex, subprocess, sys

ROOT = os.environ["ROOT"]
SCRATCH = os.environ["SCRATCH"]
CANARYD = os.path.join(ROOT, "build/canaryd")
CANARYCTL = os.path.join(ROOT, "build/canaryctl")
RUN_TIMEOUT = 120

n_ok = n_fail = 0


def ok(desc):
    global n_ok
    n_ok += 1
    print(f"ok - {desc}", flush=True)


def not_ok(desc, diag=""):
    global n_fail
    n_fail += 1
    print(f"not ok - {desc}", flush=True)
    for line in diag.rstrip().splitlines()[-20:]:
        print(f"#   {line}")


def run(argv, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- markdown
DOCS = ["README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))

FENCE = re.compile(r"^( {0,3})(`{3,}(?=[^`]*$)|~{3,})\s*([^`\s]*)")
MARKER = re.compile(r"^\s*<!--\s*(runnable|invalid-example)\s*-->\s*$")


class Block:
    def __init__(self, doc, line, lang, marker):
        self.doc, self.line, self.lang, self.marker = doc, line, lang, marker
        self.body = []  # (lineno, text)


def parse_md(doc):
    """Fenced blocks (with the marker just above them), prose lines, markers."""
    blocks, prose, stray = [], [], []
    lines = open(os.path.join(ROOT, doc), encoding="utf-8").read().split("\n")
    cur = None
    pending = None  # (marker, lineno) waiting for a fence
    for no, text in enumerate(lines, 1):
        if cur is not None:
            m = re.match(r"^ {0,3}(`{3,}|~{3,})\s*$", text)
            if m and m.group(1)[0] == cur.fence[0] and len(m.group(1)) >= len(cur.fence):
                blocks.append(cur)
                cur = None
            else:
                cur.body.append((no, text[len(cur.indent):] if text.startswith(cur.indent) else text.lstrip()))
            continue
        m = FENCE.match(text)
        if m:
            marker = pending[0] if pending else None
            cur = Block(doc, no, m.group(3).lower(), marker)
            cur.fence, cur.indent = m.group(2), m.group(1)
            pending = None
            continue
        mk = MARKER.match(text)
        if mk:
            if pending:
                stray.append(pending)
            pending = (mk.group(1), no)
            continue
        if text.strip() and pending:
            stray.append(pending)
            pending = None
        prose.append((no, text))
    if pending:
        stray.append(pending)
    if cur is not None:
        blocks.append(cur)
    return blocks, prose, stray


parsed = {doc: parse_md(doc) for doc in DOCS}

SHELL_LANGS = {"sh", "bash", "shell", "console"}
YAML_LANGS = {"yaml", "yml"}


# ------------------------------------------------------- shell extraction
def strip_comment(line):
    """Drop a shell comment: '#' at a word start, outside quotes."""
    q = None
    prev = " "
    i = 0
    while i < len(line):
        c = line[i]
        if q:
            if c == "\\" and q == '"':
                i += 2
                prev = "x"
                continue
            if c == q:
                q = None
        elif c == "\\":
            i += 2
            prev = "x"
            continue
        elif c in "'\"":
            q = c
        elif c == "#" and (prev.isspace() or prev in ";&|()"):
            return line[:i]
        prev = c
        i += 1
    return line


HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")


def shell_commands(block):
    """(lineno, command text, heredocs) for each logical command line of a
    shell block; heredocs: [(lineno of first body line, body text)]."""
    out = []
    body = block.body
    i = 0
    console = block.lang == "console"
    while i < len(body):
        no, text = body[i]
        i += 1
        if console:
            if not text.startswith("$ "):
                continue
            text = text[2:]
        text = strip_comment(text)
        while text.rstrip().endswith("\\") and i < len(body):
            nxt = body[i][1]
            i += 1
            if console and nxt.startswith("> "):
                nxt = nxt[2:]
            text = text.rstrip()[:-1] + " " + strip_comment(nxt)
        heredocs = []
        for m in HEREDOC.finditer(text):
            delim, dash = m.group(3), m.group(1)
            start = body[i][0] if i < len(body) else no + 1
            lines = []
            while i < len(body):
                t = body[i][1]
                i += 1
                if (t.lstrip("\t") if dash else t) == delim:
                    break
                lines.append(t)
            heredocs.append((start, "\n".join(lines) + "\n"))
        if text.strip():
            out.append((no, text, heredocs))
    return out


SEPARATORS = {";", ";;", "&", "&&", "|", "||", "|&", "(", ")"}
PREFIX_CMDS = {"sudo", "env", "time", "exec", "command", "nohup"}


def simple_commands(text):
    """Split a command line into argv lists, without redirections, sudo & co."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = ""
    try:
        toks = list(lex)
    except ValueError as e:
        raise ValueError(f"cannot tokenize: {e}")
    cmds, cur = [], []
    k = 0
    while k < len(toks):
        t = toks[k]
        if t in SEPARATORS:
            cmds.append(cur)
            cur = []
        elif set(t) <= set("<>&|;()") and ("<" in t or ">" in t):
            if cur and cur[-1].isdigit():
                cur.pop()  # 2>&1
            k += 1  # skip the redirection's target / heredoc delimiter
        else:
            cur.append(t)
        k += 1
    cmds.append(cur)
    result = []
    for argv in cmds:
        while argv:
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
                argv = argv[1:]
            elif argv[0] in PREFIX_CMDS:
                prog = argv[0]
                argv = argv[1:]
                while argv and argv[0].startswith("-"):
                    opt = argv[0]
                    argv = argv[1:]
                    if prog == "sudo" and opt in ("-u", "-g", "-C", "-D", "-h", "-p", "-U"):
                        argv = argv[1:]
            else:
                break
        if argv:
            result.append(argv)
    return result


# ------------------------------------------------------------- usage texts
def usage_of(binary):
    r = run([binary, "--help"])
    return r.returncode, r.stdout + r.stderr


FLAG_RE = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)(=|\s+(?=[A-Za-z0-9'/\"]))?")


def flags_in(text):
    """{flag: takes_argument} for the flags of a usage synopsis."""
    flags = {}
    for m in FLAG_RE.finditer(text):
        flags[m.group(1)] = flags.get(m.group(1), False) or bool(m.group(2))
    return flags


d_rc, d_usage = usage_of(CANARYD)
c_rc, c_usage = usage_of(CANARYCTL)
if d_rc != 0 or "usage:" not in d_usage:
    not_ok(f"build/canaryd --help prints its usage (exit {d_rc})", d_usage)
if c_rc != 0 or "usage:" not in c_usage:
    not_ok(f"build/canaryctl --help prints its usage (exit {c_rc})", c_usage)

canaryd_flags = flags_in(d_usage)
canaryd_flags.update({"--help": False, "-h": False})
m = re.search(r"--bpffs\s+(/\S+)", d_usage.split("defaults:", 1)[-1])
default_bpffs = m.group(1) if m else "/sys/fs/bpf/canaryd"

# canaryctl and kubectl canary: the global synopsis is everything up to the
# first section header ("... verbs (...):"); verb lines are indented by
# exactly 2 spaces.
def verb_table(usage):
    lines = usage.splitlines()
    end = next((k for k, l in enumerate(lines) if k and re.match(r"^\S.*:\s*$", l)), len(lines))
    globs = flags_in(" ".join(lines[:end]).split("VERB")[0])
    globs.update({"--help": False, "-h": False})
    verbs = {}
    for l in lines[end:]:
        if not re.match(r"^  [a-z]", l):
            continue
        left = re.split(r"\s{2,}", l.strip())[0]
        for part in left.split(" | "):
            words = part.split()
            if words and re.match(r"^[a-z][a-z-]*$", words[0]):
                verbs.setdefault(words[0], {}).update(flags_in(part))
    return globs, verbs


ctl_globals, ctl_verbs = verb_table(c_usage)
if not ctl_verbs:
    not_ok("canaryctl --help lists its verbs", c_usage)
p_rc, p_usage = usage_of(os.path.join(ROOT, "build/kubectl-canary"))
plug_globals, plug_verbs = verb_table(p_usage)
if p_rc != 0 or not plug_verbs:
    not_ok(f"build/kubectl-canary --help lists its verbs (exit {p_rc})", p_usage)

skel = open(os.path.join(ROOT, "build/canary.skel.h"), encoding="utf-8").read()
skel_maps = set(re.findall(r"struct bpf_map \*(\w+);", skel))

make_cache, bpftool_help = {}, {}


def make_targets():
    """Targets with a rule in make's database (Makefile and its includes);
    pattern rules as regexes. A file without a rule (the directory `tests`)
    makes `make -n tests` succeed, so -n alone is not enough."""
    r = run(["make", "-pq", "-r", "-C", ROOT], timeout=60)  # -r: no built-in rules
    explicit, patterns = set(), []
    prev = ""
    for line in r.stdout.splitlines():
        m = re.match(r"^([^\s#][^=]*?)::?(?:\s|$)", line)
        if m and prev != "# Not a target:" and not line.startswith("."):
            for t in m.group(1).split():
                if t == "%":
                    continue  # match-anything
                if "%" in t:
                    patterns.append(re.compile("^" + re.escape(t).replace("%", ".+") + "$"))
                else:
                    explicit.add(t)
        prev = line
    return explicit, patterns


MAKE_TARGETS = make_targets()


def make_target_ok(target):
    if target not in make_cache:
        explicit, patterns = MAKE_TARGETS
        if target and target not in explicit and not any(p.match(target) for p in patterns):
            make_cache[target] = (False, "no rule in the Makefile or its includes")
        else:
            argv = ["make", "-n", "-C", ROOT] + ([target] if target else [])
            r = run(argv, timeout=60)
            make_cache[target] = (r.returncode == 0, r.stderr)
    return make_cache[target]


def check_flags(argv, known, what):
    """Problems with the -flags in argv (known: {flag: takes_arg})."""
    probs = []
    k = 0
    while k < len(argv):
        t = argv[k]
        if t.startswith("-") and t != "-":
            name = t.split("=", 1)[0]
            if name not in known:
                probs.append(f"{what}: unknown flag {name}")
            elif known[name] and "=" not in t:
                k += 1
                if k >= len(argv):
                    probs.append(f"{what}: {name} needs an argument")
        k += 1
    return probs


def check_verbs(argv, globs, verbs, what):
    probs = []
    k = 0
    while k < len(argv) and argv[k].startswith("-"):
        name = argv[k].split("=", 1)[0]
        if name not in globs:
            probs.append(f"{what}: unknown option {name} before the verb")
        elif globs[name] and "=" not in argv[k]:
            k += 1
        k += 1
    if k >= len(argv):
        if not any(a in ("--help", "-h", "--version") for a in argv):
            probs.append(f"{what}: no verb")
        return probs
    verb = argv[k]
    if verb not in verbs:
        return probs + [f"{what}: unknown verb {verb!r} (usage lists: {', '.join(sorted(verbs))})"]
    return probs + check_flags(argv[k + 1:], {**globs, **verbs[verb]}, f"{what} {verb}")


def check_canaryctl(argv):
    return check_verbs(argv, ctl_globals, ctl_verbs, "canaryctl")


BPFTOOL_OPTS_WITH_ARG = {"-m", "--mapcompat", "-L", "--use-loader", "-B", "--base-btf"}


def check_bpftool(argv):
    probs = []
    rest = []
    k = 0
    while k < len(argv):
        if argv[k].startswith("-") and not rest:
            if argv[k] in BPFTOOL_OPTS_WITH_ARG:
                k += 1
        else:
            rest.append(argv[k])
        k += 1
    if len(rest) < 2:
        return ["bpftool: no OBJECT COMMAND"]
    obj, cmd = rest[0], rest[1]
    if obj not in bpftool_help:
        r = run(["bpftool", obj, "help"])
        bpftool_help[obj] = r.stdout + r.stderr
    h = bpftool_help[obj]
    pat = rf"bpftool {re.escape(obj)}\s+(\{{[^}}]*\b{re.escape(cmd)}\b[^}}]*\}}|{re.escape(cmd)}\b)"
    if not re.search(pat, h):
        probs.append(f"bpftool: `{obj} {cmd}` is not in `bpftool {obj} help`")
    for a, b in zip(rest, rest[1:]):
        if a == "pinned" and b.startswith("/sys/fs/bpf/"):
            d, name = os.path.split(b)
            if d != default_bpffs:
                probs.append(f"bpftool: {b} is not under canaryd's default --bpffs {default_bpffs}")
            elif name not in skel_maps:
                probs.append(f"bpftool: no map {name!r} in the skeleton (maps: {', '.join(sorted(skel_maps))})")
    return probs


def check_command(argv):
    prog = os.path.basename(argv[0])
    if prog == "canaryd":
        return check_flags(argv[1:], canaryd_flags, "canaryd")
    if prog == "canaryctl":
        return check_canaryctl(argv[1:])
    if prog == "kubectl" and argv[1:2] == ["canary"]:
        return check_verbs(argv[2:], plug_globals, plug_verbs, "kubectl canary")
    if prog == "make":
        probs = []
        targets = []
        k = 1
        while k < len(argv):
            t = argv[k]
            if t in ("-C", "-f", "--file", "--directory", "-I", "-o", "-W"):
                k += 1
            elif not t.startswith("-") and "=" not in t:
                targets.append(t)
            k += 1
        for t in targets or [""]:
            good, err = make_target_ok(t)
            if not good:
                probs.append(f"make: no target {t or '(default)'!r}: " + (err.strip().splitlines() or ["?"])[-1])
        return probs
    if prog == "bpftool":
        return check_bpftool(argv[1:])
    return None  # not one of ours


# ------------------------------------------------- 1. Rollout examples
cfg_dir = os.path.join(SCRATCH, "configs")
os.makedirs(cfg_dir)


def check_rollout_yaml(doc, line, text, invalid, what):
    fname = os.path.join(cfg_dir, f"{doc.replace('/', '_')}_L{line}.yaml")
    with open(fname, "w", encoding="utf-8") as f:
        f.write(text)
    r = run([CANARYD, "--config", fname, "--check-config"], timeout=30)
    n = len(re.findall(r"^kind:\s*Rollout\s*$", text, re.M))
    desc = f"{doc}:{line}: {what} "
    if invalid:
        good = r.returncode == 1 and r.stderr.startswith(fname)
        err = r.stderr.strip().replace(fname, os.path.basename(fname))
        desc += f"is rejected by --check-config as marked invalid-example ({err or 'exit %d' % r.returncode})"
        if good:
            ok(desc)
        else:
            not_ok(desc, r.stdout)
    else:
        want = f"{fname}: {n} rollout(s), valid"
        good = r.returncode == 0 and r.stdout.strip() == want
        if good:
            ok(desc + f"passes canaryd --check-config ({n} rollout(s))")
        else:
            not_ok(desc + f"passes canaryd --check-config (exit {r.returncode})",
                   (r.stdout + r.stderr).replace(fname, os.path.basename(fname)))


for doc in DOCS:
    blocks, _, _ = parsed[doc]
    for b in blocks:
        text = "\n".join(t for _, t in b.body) + "\n"
        if b.lang in YAML_LANGS and re.search(r"^kind:\s*Rollout\b", text, re.M):
            check_rollout_yaml(doc, b.line, text, b.marker == "invalid-example", "yaml block")
        elif b.marker == "invalid-example":
            not_ok(f"{doc}:{b.line}: <!-- invalid-example --> is followed by a ```yaml block with kind: Rollout (got ```{b.lang})")
        if b.lang in SHELL_LANGS:
            for no, _, heredocs in shell_commands(b):
                for start, body in heredocs:
                    if re.search(r"^kind:\s*Rollout\b", body, re.M):
                        check_rollout_yaml(doc, start, body, False, f"heredoc (command at line {no})")

# ------------------------------------------------------ 2. command lines
OK_TEXT = {
    "canaryd": "flags are in canaryd --help",
    "canaryctl": "verb and flags are in canaryctl --help",
    "kubectl": "verb and flags are in kubectl-canary --help",
    "make": "target(s) exist (make -n)",
    "bpftool": "command is in bpftool's help, pinned maps exist",
}
for doc in DOCS:
    blocks, _, _ = parsed[doc]
    for b in blocks:
        if b.lang not in SHELL_LANGS:
            continue
        for no, text, _ in shell_commands(b):
            try:
                cmds = simple_commands(text)
            except ValueError as e:
                not_ok(f"{doc}:{no}: {text.strip()}: {e}")
                continue
            for argv in cmds:
                probs = check_command(argv)
                if probs is None:
                    continue
                shown = " ".join(shlex.quote(a) for a in argv)
                if probs:
                    for p in probs:
                        not_ok(f"{doc}:{no}: `{shown}`: {p}")
                else:
                    ok(f"{doc}:{no}: `{shown}`: " + OK_TEXT[os.path.basename(argv[0])])

# ---------------------------------------------------- 3. runnable blocks
entries = [e for e in os.listdir(ROOT) if e != ".git"]
env = dict(os.environ)
env["PATH"] = os.path.join(ROOT, "build") + os.pathsep + env.get("PATH", "")
for doc in DOCS:
    blocks, _, stray = parsed[doc]
    for marker, no in stray:
        not_ok(f"{doc}:{no}: <!-- {marker} --> is not followed by a fenced block")
    for b in blocks:
        if b.marker != "runnable":
            continue
        if b.lang not in SHELL_LANGS:
            not_ok(f"{doc}:{b.line}: <!-- runnable --> block is ```{b.lang}, not sh/bash/console")
            continue
        if b.lang == "console":
            script = []
            for no, text, heredocs in shell_commands(b):
                script.append(text)
                for _, body in heredocs:
                    script.append(body.rstrip("\n"))
                    script.append(HEREDOC.search(text).group(3))
            script = "\n".join(script) + "\n"
        else:
            script = "\n".join(t for _, t in b.body) + "\n"
        work = os.path.join(SCRATCH, f"run_{doc.replace('/', '_')}_L{b.line}")
        os.makedirs(work)
        for e in entries:
            os.symlink(os.path.join(ROOT, e), os.path.join(work, e))
        with open(os.path.join(work, ".block.sh"), "w", encoding="utf-8") as f:
            f.write(script)
        try:
            r = subprocess.run(["timeout", "-k", "5", str(RUN_TIMEOUT), "bash", "-e", "-o", "pipefail", ".block.sh"],
                               cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            rc, outp = r.returncode, r.stdout + r.stderr
        except OSError as e:
            rc, outp = -1, str(e)
        what = f"{doc}:{b.line}: runnable block"
        if rc == 0:
            ok(f"{what} exits 0")
        else:
            not_ok(f"{what} exits 0 (exit {rc}{', timed out after %d s' % RUN_TIMEOUT if rc == 124 else ''})", outp)

# ------------------------------------------------------------ 4. links
def slugs(doc_path):
    ids, seen = set(), {}
    blocks, prose, _ = parse_md(os.path.relpath(doc_path, ROOT))
    for _, text in prose:
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", text)
        if not m:
            continue
        s = m.group(1).strip().lower()
        s = re.sub(r"[^\w\- ]", "", s).replace(" ", "-")
        n = seen.get(s, 0)
        seen[s] = n + 1
        ids.add(s if n == 0 else f"{s}-{n}")
    return ids


LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
REFDEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
for doc in DOCS:
    _, prose, _ = parsed[doc]
    for no, text in prose:
        plain = re.sub(r"(`+).*?\1", "", text)
        targets = [m.group(1) for m in LINK.finditer(plain)]
        m = REFDEF.match(plain)
        if m:
            targets.append(m.group(1))
        for t in targets:
            if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", t) or t.startswith("//"):
                continue  # http:, https:, mailto: ...
            path, _, anchor = t.partition("#")
            base = os.path.dirname(os.path.join(ROOT, doc))
            full = os.path.normpath(os.path.join(base, path)) if path else os.path.join(ROOT, doc)
            what = f"{doc}:{no}: link ({t})"
            if not os.path.exists(full):
                not_ok(f"{what}: {os.path.relpath(full, ROOT)} does not exist")
            elif anchor and full.endswith(".md") and anchor not in slugs(full):
                not_ok(f"{what}: no heading #{anchor} in {os.path.relpath(full, ROOT)}")
            else:
                ok(f"{what} resolves")

print(f"1..{n_ok + n_fail}")
print(f"# docs: {n_ok} ok, {n_fail} not ok")
sys.exit(1 if n_fail else 0)
PY
