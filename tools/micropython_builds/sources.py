"""The MicroPython v1.28.0 source tree the host interpreters and the ESP32
image are built from: unpacked once into build/mp/src/, verified first.

Where it comes from, in this order:
  1. a folder of `git archive` tarballs: $ANTBRIDGE_MP_SRC, else
     ../shared/micropython-src/ next to the repository (for a git worktree,
     also next to its main checkout). Each archive's SHA-256 must be the one
     pinned below, and its pax header must name the pinned commit.
  2. no such folder (or ANTBRIDGE_MP_SRC=upstream): upstream on GitHub,
     fetched with git by tag (MicroPython) or commit id (micropython-lib,
     BTstack). git checks every object it receives against its hash, so a
     checkout whose HEAD is the pinned commit id holds exactly the pinned tree.

The archives are read in place; nothing from the shared folder is copied
into the repository.
"""
import hashlib
import os
import shutil
import subprocess
import tarfile

MICROPYTHON_VERSION = "1.28.0"
ENV = "ANTBRIDGE_MP_SRC"
UPSTREAM = "upstream"  # ANTBRIDGE_MP_SRC=upstream: skip the folder, fetch from GitHub
STAMP = ".antbridge-source"  # in the unpacked tree: the identity it was made from


class SourceError(Exception):
    pass


class Part:
    """One upstream tree: where it goes in the MicroPython tree, its archive
    in the shared folder and its git origin."""

    def __init__(self, name, dest, archive, sha256, top, url, ref, commit):
        self.name = name
        self.dest = dest  # relative to the MicroPython tree ("" = the tree itself)
        self.archive = archive
        self.sha256 = sha256
        self.top = top  # the archive's single top folder
        self.url = url
        self.ref = ref  # what is fetched: a tag ref or the commit id
        self.commit = commit


# The archives' hashes are pinned here (the shared folder's own SHA256SUMS
# lists the same values); each archive's pax header names the commit below.
PARTS = (
    Part("micropython", "", "micropython-1.28.0.tar.gz",
         "9d56aa9765d2b33c4d742187f27ff9f44138afd002a0bfba08824b70ce7e6439", "micropython-1.28.0",
         "https://github.com/micropython/micropython.git", "refs/tags/v1.28.0",
         "e0e9fbb17ed6fd06bb76e266ae554784c9c80804"),
    # The commit v1.28.0 pins as its lib/micropython-lib submodule.
    Part("micropython-lib", "lib/micropython-lib", "micropython-lib-8380c7bb.tar.gz",
         "1d9cca8e2dd24ea54232e3367a64547d896e1bc3bc06f7870f3c01a7d0acd838", "micropython-lib-8380c7bb",
         "https://github.com/micropython/micropython-lib.git", "8380c7bb8f9e5e5260e9539156742925e00366b2",
         "8380c7bb8f9e5e5260e9539156742925e00366b2"),
    # The commit v1.28.0 pins as lib/btstack (a BLE build of the unix port
    # needs it; the interpreters built here do not use it).
    Part("btstack", "lib/btstack", "btstack-77e752ab-subset.tar.gz",
         "fc8448b2fd572924e87bb69d52bff6f79beb137b15562bffb989adcf7b5e3f59", "btstack-77e752ab",
         "https://github.com/bluekitchen/btstack.git", "77e752abd6a0992334047a48038a5a3960e5c6bc",
         "77e752abd6a0992334047a48038a5a3960e5c6bc"),
)


def identity(parts=None):
    """What a tree is made of: one line per part (name and commit)."""
    parts = parts or PARTS
    return "".join("%s %s\n" % (p.name, p.commit) for p in parts)


# -- where the shared archives are ------------------------------------------------------


def _project_parents(root):
    """The folder holding the repository; for a git worktree also the one
    holding its main checkout (where ../shared sits next to it)."""
    yield os.path.dirname(os.path.abspath(root))
    gitfile = os.path.join(root, ".git")
    if not os.path.isfile(gitfile):
        return
    try:
        with open(gitfile) as f:
            line = f.read().strip()
        gitdir = line.split("gitdir:", 1)[1].strip()
        gitdir = os.path.join(root, gitdir) if not os.path.isabs(gitdir) else gitdir
        common = gitdir
        if os.path.isfile(os.path.join(gitdir, "commondir")):
            with open(os.path.join(gitdir, "commondir")) as f:
                common = os.path.normpath(os.path.join(gitdir, f.read().strip()))
        yield os.path.dirname(os.path.dirname(common))  # <parent>/<main checkout>/.git
    except (OSError, IndexError):
        return


def shared_dir(root, environ=None):
    """The folder of archives to use, or None to fetch from upstream."""
    environ = os.environ if environ is None else environ
    chosen = environ.get(ENV)
    if chosen == UPSTREAM:
        return None
    if chosen:
        if not os.path.isdir(chosen):
            raise SourceError("%s=%s is not a folder" % (ENV, chosen))
        return chosen
    for parent in _project_parents(root):
        candidate = os.path.join(parent, "shared", "micropython-src")
        if os.path.isdir(candidate):
            return candidate
    return None


# -- origin 1: the archives ----------------------------------------------------------------


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_archive(path, part):
    """Raise SourceError unless the archive is the pinned one."""
    if not os.path.isfile(path):
        raise SourceError("%s: missing" % path)
    got = sha256_of(path)
    if got != part.sha256:
        raise SourceError("%s: SHA-256 %s, expected %s (not the pinned %s archive)" % (path, got, part.sha256, part.name))
    with tarfile.open(path, "r:gz") as tar:
        commit = tar.pax_headers.get("comment")
    if commit != part.commit:
        raise SourceError("%s: made from commit %s, expected %s" % (path, commit, part.commit))


def unpack_shared(folder, dest, parts=None):
    """Verify every archive, then unpack them into dest (the tree)."""
    parts = parts or PARTS
    for part in parts:
        verify_archive(os.path.join(folder, part.archive), part)
    scratch = dest + ".unpack"
    for part in parts:
        shutil.rmtree(scratch, ignore_errors=True)
        with tarfile.open(os.path.join(folder, part.archive), "r:gz") as tar:
            tar.extractall(scratch, filter="data")
        top = os.path.join(scratch, part.top)
        if not os.path.isdir(top):
            raise SourceError("%s: no top folder %s" % (part.archive, part.top))
        target = os.path.join(dest, part.dest) if part.dest else dest
        if os.path.isdir(target):
            os.rmdir(target)  # an empty submodule folder of the tree unpacked before
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.rename(top, target)
    shutil.rmtree(scratch, ignore_errors=True)


# -- origin 2: upstream with git ---------------------------------------------------------


def fetch_upstream(dest, parts=None, run=subprocess.run):
    """Fetch every part with git into dest (the tree) and check that each
    is the pinned commit. `run` is subprocess.run (tests inject their own)."""
    parts = parts or PARTS

    def git(*args):
        r = run(["git"] + list(args), capture_output=True, text=True, timeout=1800)
        if r.returncode:
            raise SourceError("git %s failed: %s" % (" ".join(args), (r.stderr or r.stdout).strip()))
        return r.stdout.strip()

    for part in parts:
        target = os.path.join(dest, part.dest) if part.dest else dest
        os.makedirs(target, exist_ok=True)
        git("init", "-q", target)
        git("-C", target, "fetch", "-q", "--depth", "1", part.url, part.ref)
        got = git("-C", target, "rev-parse", "FETCH_HEAD^{commit}")
        if got != part.commit:
            raise SourceError("%s %s is commit %s, expected %s" % (part.url, part.ref, got, part.commit))
        git("-C", target, "-c", "advice.detachedHead=false", "checkout", "-q", part.commit)
        shutil.rmtree(os.path.join(target, ".git"))  # a plain tree, like the archives give


# -- the tree ---------------------------------------------------------------------------


def prepare(dest, root, environ=None, fetch=fetch_upstream, log=print, parts=None):
    """The verified tree at dest, made if missing or made from other
    sources. Returns True if it was (re)made. The caller holds the build
    lock. `fetch` is the upstream origin (tests inject their own)."""
    stamp = os.path.join(dest, STAMP)
    try:
        with open(stamp) as f:
            if f.read() == identity(parts):
                return False
    except OSError:
        pass
    folder = shared_dir(root, environ)
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(tmp), exist_ok=True)
    if folder is not None:
        log("mp: MicroPython %s sources from %s (SHA-256 and commit ids checked)" % (MICROPYTHON_VERSION, folder))
        unpack_shared(folder, tmp, parts)
    else:
        log("mp: no shared source folder; fetching MicroPython %s from GitHub with git" % MICROPYTHON_VERSION)
        os.makedirs(tmp)
        fetch(tmp)
    with open(os.path.join(tmp, STAMP), "w") as f:
        f.write(identity(parts))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return True
