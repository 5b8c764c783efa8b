"""The learner distribution (``./run release``) installs and runs from its own README, and ships
no solutions and no hidden checks."""
import inspect
import re
import textwrap

import pytest

from course.release import release
from tests.fresh_venv import run

# PyTorch's CPU index is out of reach offline: the test drops that option and lets pip's
# configured sources (its cache, a local wheel folder) serve the CPU wheel, then asserts it is one.
CPU_INDEX_OPTION = re.compile(r"\s+--index-url\s+https://download\.pytorch\.org/whl/cpu\b")
SHELL_PROMPT_FREE = re.compile(r"^[^#\s]")


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "learner-dist"
    report = release(out)
    assert "ch00_how_it_works" not in report["chapters_without_recorded_outputs"]
    return out


def readme_commands(readme: str, section: str) -> list[str]:
    """The command lines of the first ```bash block under the README's ``## section``."""
    body = readme.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", body, flags=re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if SHELL_PROMPT_FREE.match(line)]


def test_the_distribution_holds_no_solutions_hidden_checks_or_repository_commands(dist):
    shipped = {p.name for p in dist.iterdir()}
    assert not shipped & {"solutions", "tests", "solved", "course", "run", "_build", "scripts"}, shipped
    assert not list(dist.rglob("*solution*")), "a solutions file was shipped"
    for module in (dist / "autograder").glob("ch*.py"):
        assert "hidden=True" not in module.read_text(), f"{module.name} still holds hidden checks"
    assert sorted(p.name for p in (dist / "autograder" / "grading").iterdir()) == ["__init__.py", "extract.py"]
    readme = (dist / "README.md").read_text()
    assert "./run" not in readme and "make build" not in readme and "make test" not in readme
    install = readme_commands(readme, "Install")
    assert install[0].startswith("python3 -m venv .venv"), "the README's first command must create .venv"
    assert any(CPU_INDEX_OPTION.search(" " + c) for c in install), "the README must install torch's CPU build"


@pytest.mark.slow
def test_the_distribution_installs_from_its_readme_and_its_public_checks_pass_and_fail(dist):
    """Every command of the README's Install section, in order, in a copy of the distribution;
    then one check that passes and one that fails, replayed from recorded outputs."""
    readme = (dist / "README.md").read_text()
    for command in readme_commands(readme, "Install"):
        run(CPU_INDEX_OPTION.sub("", command), cwd=dist, timeout=2400)
    python = dist / ".venv" / "bin" / "python"
    assert python.exists(), "the README did not create .venv"

    from solutions.ch00_how_it_works import causal_attention_pattern
    script = "import torch\nfrom torch import Tensor\n" + inspect.getsource(causal_attention_pattern) + textwrap.dedent('''
        assert torch.version.cuda is None, f"not the CPU build of torch: {torch.__version__}"
        from autograder import check
        from autograder.core import load_all_chapters, solutions_module
        assert solutions_module("ch00_how_it_works") is None, "solutions are importable"
        assert not [c.name for e in load_all_chapters().values() for c in e.checks if c.hidden]
        assert check(causal_attention_pattern).passed
        def causal_attention_pattern(scores: Tensor) -> Tensor:
            return scores.softmax(dim=-1)  # forgets the causal mask
        assert not check(causal_attention_pattern).passed
    ''')
    done = run([str(python), "-c", script], cwd=dist / "chapters", timeout=300)
    assert "all checks passed" in done.stdout and "causal mask" in done.stdout

    progress, = readme_commands(readme, "Your progress")
    done = run(progress, cwd=dist, timeout=900)
    assert "00_how_it_works: 0/1 exercises pass" in done.stdout and "TODO    causal_attention_pattern" in done.stdout
