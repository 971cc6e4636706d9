# Where the MicroPython sources come from (tools/micropython_builds/sources.py):
# the shared archives are used only when they are the pinned ones, and
# without that folder the tree comes from upstream with git, checked against
# the pinned commit ids. GitHub is out of reach here: the git origin is run
# against local repositories standing in for it, through the same code.
import io
import os
import shutil
import subprocess
import tarfile

import pytest

import sources
from sources import Part, SourceError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")


def git(*args, cwd=None):
    r = subprocess.run(["git"] + list(args), cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True)
    return r.stdout.strip()


def make_archive(path, top, files, commit):
    """A `git archive`-like tarball: pax header comment = commit id."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, pax_headers={"comment": commit}) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(top + "/" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sources.sha256_of(path)


def fake_parts(folder):
    """Three small archives laid out like the real ones, and their Parts."""
    specs = (("micropython", "", "mp.tar.gz", "mp-top", {"README": "mp", "lib/micropython-lib/.keep": ""}),
             ("micropython-lib", "lib/micropython-lib", "lib.tar.gz", "lib-top", {"README.md": "lib"}),
             ("btstack", "lib/btstack", "bt.tar.gz", "bt-top", {"src/btstack.h": "bt"}))
    parts = []
    for i, (name, dest, archive, top, files) in enumerate(specs):
        commit = ("%x" % (i + 1)) * 40
        if name == "micropython":
            files = {k: v for k, v in files.items() if not k.startswith("lib/")}
        sha = make_archive(os.path.join(folder, archive), top, files, commit)
        parts.append(Part(name, dest, archive, sha, top, "unused", commit, commit))
    return parts


# -- the archives -----------------------------------------------------------------------------


def test_the_pinned_hashes_are_those_the_shared_folder_lists():
    # An independent record of the same archives (when the folder is here).
    folder = sources.shared_dir(ROOT)
    if folder is None:
        pytest.skip("no shared source folder on this machine: the tree came from upstream")
    with open(os.path.join(folder, "SHA256SUMS")) as f:
        listed = dict(reversed(line.split()) for line in f if line.strip())
    assert {p.archive: p.sha256 for p in sources.PARTS} == listed


def test_a_tampered_archive_is_refused(tmp_path):
    parts = fake_parts(str(tmp_path))
    for p in parts:
        sources.verify_archive(str(tmp_path / p.archive), p)  # the originals pass
    path = tmp_path / parts[1].archive
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="SHA-256"):
        sources.verify_archive(str(path), parts[1])
    with pytest.raises(SourceError, match="SHA-256"):
        sources.unpack_shared(str(tmp_path), str(tmp_path / "tree"), parts)
    assert not (tmp_path / "tree").exists()  # nothing unpacked from a folder with a bad archive


def test_an_archive_of_another_commit_is_refused(tmp_path):
    part = fake_parts(str(tmp_path))[0]
    sha = make_archive(str(tmp_path / "other.tar.gz"), part.top, {"README": "mp"}, "f" * 40)
    other = Part(part.name, part.dest, "other.tar.gz", sha, part.top, "", part.commit, part.commit)
    with pytest.raises(SourceError, match="made from commit f+, expected 1+"):
        sources.verify_archive(str(tmp_path / "other.tar.gz"), other)


def test_a_tampered_copy_of_the_real_micropython_lib_archive_is_refused(tmp_path):
    folder = sources.shared_dir(ROOT)
    if folder is None:
        pytest.skip("no shared source folder on this machine: the tree came from upstream")
    part = sources.PARTS[1]
    sources.verify_archive(os.path.join(folder, part.archive), part)
    copy = tmp_path / part.archive
    shutil.copyfile(os.path.join(folder, part.archive), copy)
    with open(copy, "ab") as f:
        f.write(b"\0")
    with pytest.raises(SourceError, match="SHA-256"):
        sources.verify_archive(str(copy), part)


def test_the_archives_unpack_into_one_tree(tmp_path):
    parts = fake_parts(str(tmp_path))
    tree = tmp_path / "tree"
    sources.unpack_shared(str(tmp_path), str(tree), parts)
    assert (tree / "README").read_text() == "mp"
    assert (tree / "lib" / "micropython-lib" / "README.md").read_text() == "lib"
    assert (tree / "lib" / "btstack" / "src" / "btstack.h").read_text() == "bt"


# -- which origin -------------------------------------------------------------------------------


def worktree_layout(tmp_path):
    """<tmp>/shared/micropython-src, a main checkout <tmp>/main and a git
    worktree of it at <tmp>/wt/x (as on this project's machines)."""
    (tmp_path / "shared" / "micropython-src").mkdir(parents=True)
    gitdir = tmp_path / "main" / ".git" / "worktrees" / "x"
    gitdir.mkdir(parents=True)
    (gitdir / "commondir").write_text("../..\n")
    wt = tmp_path / "wt" / "x"
    wt.mkdir(parents=True)
    (wt / ".git").write_text("gitdir: %s\n" % gitdir)
    return wt


def test_the_shared_folder_is_found_next_to_the_repository_or_its_main_checkout(tmp_path):
    wt = worktree_layout(tmp_path)
    shared = str(tmp_path / "shared" / "micropython-src")
    assert sources.shared_dir(str(tmp_path / "main"), {}) == shared  # ../shared of a checkout
    assert sources.shared_dir(str(wt), {}) == shared  # a worktree: ../shared of its main checkout
    assert sources.shared_dir(str(wt), {"ANTBRIDGE_MP_SRC": "upstream"}) is None
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert sources.shared_dir(str(wt), {"ANTBRIDGE_MP_SRC": str(other)}) == str(other)
    with pytest.raises(SourceError, match="not a folder"):
        sources.shared_dir(str(wt), {"ANTBRIDGE_MP_SRC": str(tmp_path / "missing")})
    lone = tmp_path / "lone" / "repo"
    lone.mkdir(parents=True)
    assert sources.shared_dir(str(lone), {}) is None


def test_without_the_shared_folder_the_tree_comes_from_upstream(tmp_path):
    repo = tmp_path / "lone" / "repo"
    repo.mkdir(parents=True)
    calls = []

    def fetch(dest):
        calls.append(dest)
        with open(os.path.join(dest, "README"), "w") as f:
            f.write("fetched")

    dest = str(tmp_path / "build" / "src" / "micropython-1.28.0")
    logs = []
    assert sources.prepare(dest, str(repo), {}, fetch=fetch, log=logs.append) is True
    assert calls == [dest + ".tmp"] and "GitHub" in logs[0]
    assert open(os.path.join(dest, "README")).read() == "fetched"
    assert open(os.path.join(dest, sources.STAMP)).read() == sources.identity()
    # Made once: a second call finds it.
    assert sources.prepare(dest, str(repo), {}, fetch=fetch, log=logs.append) is False and len(calls) == 1


def test_the_shared_folder_wins_over_upstream(tmp_path):
    wt = worktree_layout(tmp_path)
    parts = fake_parts(str(tmp_path / "shared" / "micropython-src"))

    def fetch(dest):
        raise AssertionError("upstream must not be used when the folder is there")

    dest = str(tmp_path / "src")
    assert sources.prepare(dest, str(wt), {}, fetch=fetch, log=lambda m: None, parts=parts) is True
    assert (tmp_path / "src" / "lib" / "btstack" / "src" / "btstack.h").exists()


# -- origin 2: git --------------------------------------------------------------------------------


def upstream_repos(tmp_path):
    """Local repositories standing in for the three upstream ones: the
    MicroPython one with an annotated tag v1.28.0 on its second commit."""
    made = []
    for name, files in (("micropython", {"py/obj.c": "obj"}), ("micropython-lib", {"README.md": "lib"}),
                        ("btstack", {"src/btstack.h": "bt"})):
        repo = tmp_path / "up" / name
        repo.mkdir(parents=True)
        git("init", "-q", str(repo))
        for i, (path, text) in enumerate(files.items()):
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(text)
        git("add", "-A", cwd=repo)
        git("commit", "-qm", "first", cwd=repo)
        first = git("rev-parse", "HEAD", cwd=repo)
        (repo / "later.txt").write_text("later")
        git("add", "-A", cwd=repo)
        git("commit", "-qm", "second", cwd=repo)
        git("tag", "-a", "v1.28.0", "-m", "v1.28.0", cwd=repo)
        made.append((repo, first, git("rev-parse", "HEAD", cwd=repo)))
    return made


def git_parts(made):
    (mp, _, mp_tagged), (lib, lib_first, _), (bt, bt_first, _) = made
    return (Part("micropython", "", "", "", "", "file://%s" % mp, "refs/tags/v1.28.0", mp_tagged),
            Part("micropython-lib", "lib/micropython-lib", "", "", "", "file://%s" % lib, lib_first, lib_first),
            Part("btstack", "lib/btstack", "", "", "", "file://%s" % bt, bt_first, bt_first))


def test_upstream_is_fetched_by_tag_and_commit_and_checked(tmp_path):
    parts = git_parts(upstream_repos(tmp_path))
    tree = tmp_path / "tree"
    tree.mkdir()
    sources.fetch_upstream(str(tree), parts)
    assert (tree / "py" / "obj.c").read_text() == "obj" and (tree / "later.txt").exists()  # the tagged commit
    assert (tree / "lib" / "micropython-lib" / "README.md").read_text() == "lib"
    assert not (tree / "lib" / "micropython-lib" / "later.txt").exists()  # the pinned (older) commit, not the tip
    assert (tree / "lib" / "btstack" / "src" / "btstack.h").exists()
    assert not (tree / ".git").exists() and not (tree / "lib" / "btstack" / ".git").exists()


def test_upstream_at_another_commit_is_refused(tmp_path):
    made = upstream_repos(tmp_path)
    parts = list(git_parts(made))
    # The tag moved (or the repository is not the real one): its commit is
    # not the pinned one.
    mp = parts[0]
    parts[0] = Part(mp.name, mp.dest, "", "", "", mp.url, mp.ref, made[0][1])
    tree = tmp_path / "tree"
    tree.mkdir()
    with pytest.raises(SourceError, match="refs/tags/v1.28.0 is commit %s, expected %s" % (made[0][2], made[0][1])):
        sources.fetch_upstream(str(tree), parts)


def test_an_unreachable_upstream_is_a_clear_error(tmp_path):
    part = Part("micropython", "", "", "", "", "file://%s" % (tmp_path / "nowhere"), "refs/tags/v1.28.0", "0" * 40)
    with pytest.raises(SourceError, match="git -C .* fetch .* failed"):
        sources.fetch_upstream(str(tmp_path / "tree"), (part,))
