"""A learner's feedback page, from a grading record: Markdown and HTML.

Each check is listed as passed or failed with its message and numbers; a hidden check shows only
its name, whether it passed and a generic sentence, never its code, inputs or message. Nothing the
learner's code printed appears here (so printed "PASS" lines cannot pass for the grader's).
"""
from __future__ import annotations

import html as _html

GENERIC_HIDDEN = "Hidden check: it tests the same specification on inputs you have not seen."


def _numbers(details: dict) -> str:
    if not details or details.get("max_abs_error") is None:
        return ""
    try:
        return (f"shape {tuple(details.get('shape', []))}, {details.get('dtype')}, "
                f"max abs err {float(details['max_abs_error']):.2g}, max rel err {float(details['max_rel_error']):.2g}")
    except (TypeError, ValueError):
        return ""


def _rows(record: dict):
    for name, exercise in record["exercises"].items():
        checks = []
        for c in exercise["checks"]:
            if c["hidden"]:
                message, numbers = ("" if c["passed"] else GENERIC_HIDDEN), ""
            else:
                message, numbers = ("" if c["passed"] else c["message"]), _numbers(c.get("details") or {})
            checks.append((c["name"] + (" (hidden)" if c["hidden"] else ""), c["passed"], message, numbers,
                           c["points"], c["max_points"]))
        yield name, exercise["score"], exercise["max_score"], checks


def _load_notes(record: dict) -> list[str]:
    load = record.get("load", {})
    notes = list(load.get("problems", []))
    for error in load.get("errors", []):
        notes.append(f"cell {error['cell']} (line {error['line']}) raised {error['type']}: {error['message']}")
    return notes


def markdown(record: dict) -> str:
    out = [f"# Feedback: {record['student']} ({record['chapter']})", "",
           f"**Score: {record['score']:g} / {record['max_score']:g}**", "",
           f"Submission sha256 `{record['submission_sha256']}`, graded {record['graded_at']}.", ""]
    notes = _load_notes(record)
    if notes:
        out += ["## While loading your notebook", ""] + [f"- {_md(n)}" for n in notes] + [""]
    for name, score, max_score, checks in _rows(record):
        out += [f"## `{name}`: {score:g} / {max_score:g}", "", "| check | result | points | message |",
                "|---|---|---|---|"]
        for check, passed, message, numbers, points, max_points in checks:
            text = _md(message) + (f" [{_md(numbers)}]" if numbers else "")
            out.append(f"| {_md(check)} | {'PASS' if passed else 'FAIL'} | {points:g} / {max_points:g} | {text} |")
        out.append("")
    return "\n".join(out)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def html(record: dict) -> str:
    e = _html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>Feedback: {e(record['student'])} ({e(record['chapter'])})</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse;"
             "width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}"
             ".pass{color:#16651c}.fail{color:#a01010}code{background:#f4f4f4}</style></head><body>",
             f"<h1>Feedback: {e(record['student'])} ({e(record['chapter'])})</h1>",
             f"<p><strong>Score: {record['score']:g} / {record['max_score']:g}</strong></p>",
             f"<p>Submission sha256 <code>{e(record['submission_sha256'])}</code>, graded {e(record['graded_at'])}.</p>"]
    notes = _load_notes(record)
    if notes:
        parts.append("<h2>While loading your notebook</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    for name, score, max_score, checks in _rows(record):
        parts.append(f"<h2><code>{e(name)}</code>: {score:g} / {max_score:g}</h2>")
        parts.append("<table><tr><th>check</th><th>result</th><th>points</th><th>message</th></tr>")
        for check, passed, message, numbers, points, max_points in checks:
            verdict = "<span class='pass'>PASS</span>" if passed else "<span class='fail'>FAIL</span>"
            text = e(message) + (f" <small>[{e(numbers)}]</small>" if numbers else "")
            parts.append(f"<tr><td>{e(check)}</td><td>{verdict}</td><td>{points:g} / {max_points:g}</td>"
                         f"<td>{text}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
