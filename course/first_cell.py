# Setup. Inside a copy of the course (`./run work`, or any clone with its packages installed)
# this cell does nothing. On Colab or Binder it installs the course once per session, in a few
# minutes: it clones the course's repository, installs the CPU build of torch and the pinned
# packages (requirements.lock), and puts the course on the path for the cells below.
def _install_course_if_missing():
    import importlib.util, os, pathlib, subprocess, sys

    if importlib.util.find_spec("autograder") is not None:
        return  # installed: nothing to do
    here = pathlib.Path.cwd().resolve()
    for folder in [here, *here.parents]:
        if (folder / "autograder" / "core.py").is_file() and (folder / "utils").is_dir():
            sys.path.insert(0, str(folder))  # a clone opened as it is: use it
            return
    repo = os.environ.get("COURSE_REPO", "https://github.com/mechinterp-course/course")
    target = pathlib.Path(os.environ.get("COURSE_DIR", "mechinterp-course")).resolve()
    if not target.is_dir():
        subprocess.check_call(["git", "clone", "-q", "--depth", "1", repo, str(target)])
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    torch_index = os.environ.get("TORCH_INDEX", "https://download.pytorch.org/whl/cpu")
    subprocess.check_call(pip + ["torch==2.13.0"] + (["--index-url", torch_index] if torch_index else []))
    subprocess.check_call(pip + ["-r", str(target / "requirements.lock")])
    subprocess.check_call(pip + ["--no-deps", "-e", str(target)])
    sys.path.insert(0, str(target))
    print(f"installed the course from {repo} into {target}")


_install_course_if_missing()
