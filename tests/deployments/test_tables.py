"""The `mlc` text tables: the exact layouts at common terminal widths and when piped, and the
properties every layout keeps (fits the width, ids and links whole, nothing hidden silently)."""

from __future__ import annotations

import pytest

from deployments.tables import Column, render

TASK_COLUMNS = [
    Column(name="id", kind="key"),
    Column(name="kind", kind="key"),
    Column(name="version", kind="key"),
    Column(name="step", kind="key"),
    Column(name="status", kind="key"),
    Column(name="group", drop=1),
    Column(name="quorum", kind="key", drop=2),
    Column(name="deadline", kind="key"),
    Column(name="Prefect UI", kind="link"),
]
RUN_41 = "http://127.0.0.1:4200/runs/flow-run/0b5a0b5e-3f1c-4b7e-9c37-6a2d9e4b1c11"
RUN_42 = "http://127.0.0.1:4200/runs/flow-run/7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
TASK_ROWS: list[list[object]] = [
    [41, "approval", "credit-risk:1", "deploy", "open", "model-risk,data-governance", "2 of 3",
     "2026-12-03 21:14", RUN_41],
    [42, "review", "credit-risk:2", "validate", "open", "model-risk", "1 of 1",
     "2026-12-04 09:00", RUN_42],
    [43, "approval", "churn:7", "retire", "decided", "data-governance", None, None, None],
]

ALERT_COLUMNS = [
    Column(name="id", kind="key"),
    Column(name="version", kind="key"),
    Column(name="severity", kind="key"),
    Column(name="title"),
    Column(name="opened", kind="key", drop=1),
    Column(name="acknowledged", kind="key", drop=2),
    Column(name="Prefect UI", kind="link"),
]
RUN_7 = "http://127.0.0.1:4200/runs/flow-run/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
ALERT_ROWS: list[list[object]] = [
    [7, "credit-risk:2", "critical",
     "credit-risk:2: drift breach in 2026-11-19..2026-11-25: income, region, age",
     "2026-11-26 06:00", False, RUN_7],
    [8, "churn:7", "warning", "churn:7: missing values\tin\r\ntenure", "2026-11-27 06:00", True,
     None],
]

TABLES = {
    "tasks": ("Human tasks (3)", TASK_COLUMNS, TASK_ROWS),
    "alerts": ("Alerts (2)", ALERT_COLUMNS, ALERT_ROWS),
}

# quorum (drop=2) goes first; group then folds into the 14 characters left, hard-split as it
# has no space; links move below their label, as label and link together exceed 80.
TASKS_80 = """\
Human tasks (3)
id  kind      version        step      status   group           deadline
--------------------------------------------------------------------------------
41  approval  credit-risk:1  deploy    open     model-risk,dat  2026-12-03 21:14
                                                a-governance
    Prefect UI:
      http://127.0.0.1:4200/runs/flow-run/0b5a0b5e-3f1c-4b7e-9c37-6a2d9e4b1c11
42  review    credit-risk:2  validate  open     model-risk      2026-12-04 09:00
    Prefect UI:
      http://127.0.0.1:4200/runs/flow-run/7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f
43  approval  churn:7        retire    decided  data-governanc
                                                e
(not shown at 80 columns: quorum; use --json for everything)
"""

# Every column at its natural width makes exactly 100.
TASKS_100 = """\
Human tasks (3)
id  kind      version        step      status   group                       quorum  deadline
----------------------------------------------------------------------------------------------------
41  approval  credit-risk:1  deploy    open     model-risk,data-governance  2 of 3  2026-12-03 21:14
    Prefect UI: http://127.0.0.1:4200/runs/flow-run/0b5a0b5e-3f1c-4b7e-9c37-6a2d9e4b1c11
42  review    credit-risk:2  validate  open     model-risk                  1 of 1  2026-12-04 09:00
    Prefect UI: http://127.0.0.1:4200/runs/flow-run/7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f
43  approval  churn:7        retire    decided  data-governance
"""

TASKS_PIPED = (
    "id\tkind\tversion\tstep\tstatus\tgroup\tquorum\tdeadline\tPrefect UI\n"
    "41\tapproval\tcredit-risk:1\tdeploy\topen\tmodel-risk,data-governance\t2 of 3\t"
    f"2026-12-03 21:14\t{RUN_41}\n"
    "42\treview\tcredit-risk:2\tvalidate\topen\tmodel-risk\t1 of 1\t"
    f"2026-12-04 09:00\t{RUN_42}\n"
    "43\tapproval\tchurn:7\tretire\tdecided\tdata-governance\t\t\t\n"
)

# Nothing dropped: the title folds into the 19 characters left, the long date range starting
# its own line before it is split.
ALERTS_80 = """\
Alerts (2)
id  version        severity  title                opened            acknowledged
--------------------------------------------------------------------------------
7   credit-risk:2  critical  credit-risk:2:       2026-11-26 06:00  no
                             drift breach in
                             2026-11-19..2026-11
                             -25: income,
                             region, age
    Prefect UI:
      http://127.0.0.1:4200/runs/flow-run/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9
8   churn:7        warning   churn:7: missing     2026-11-27 06:00  yes
                             values in tenure
"""

ALERTS_100 = """\
Alerts (2)
id  version        severity  title                                    opened            acknowledged
----------------------------------------------------------------------------------------------------
7   credit-risk:2  critical  credit-risk:2: drift breach in           2026-11-26 06:00  no
                             2026-11-19..2026-11-25: income, region,
                             age
    Prefect UI: http://127.0.0.1:4200/runs/flow-run/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9
8   churn:7        warning   churn:7: missing values in tenure        2026-11-27 06:00  yes
"""

# 135 wide: the grid is not stretched to 160.
ALERTS_160 = """\
Alerts (2)
id  version        severity  title                                                                       opened            acknowledged
---------------------------------------------------------------------------------------------------------------------------------------
7   credit-risk:2  critical  credit-risk:2: drift breach in 2026-11-19..2026-11-25: income, region, age  2026-11-26 06:00  no
    Prefect UI: http://127.0.0.1:4200/runs/flow-run/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9
8   churn:7        warning   churn:7: missing values in tenure                                           2026-11-27 06:00  yes
"""  # noqa: E501

ALERTS_PIPED = (
    "id\tversion\tseverity\ttitle\topened\tacknowledged\tPrefect UI\n"
    "7\tcredit-risk:2\tcritical\t"
    "credit-risk:2: drift breach in 2026-11-19..2026-11-25: income, region, age\t"
    f"2026-11-26 06:00\tno\t{RUN_7}\n"
    "8\tchurn:7\twarning\tchurn:7: missing values in tenure\t2026-11-27 06:00\tyes\t\n"
)

EXACT = [
    ("tasks", 80, TASKS_80),
    ("tasks", 100, TASKS_100),
    ("tasks", 160, TASKS_100),  # already fits at its natural width: the same as at 100
    ("tasks", None, TASKS_PIPED),
    ("alerts", 80, ALERTS_80),
    ("alerts", 100, ALERTS_100),
    ("alerts", 160, ALERTS_160),
    ("alerts", None, ALERTS_PIPED),
]
WIDTHS = [60, 80, 100, 160]


@pytest.mark.parametrize(("table", "width", "expected"), EXACT)
def test_exact_layout(table: str, width: int | None, expected: str) -> None:
    assert render(*TABLES[table], width) == expected


def unbreakable(table: str) -> list[str]:
    """The values that must appear whole: every never-dropped key, and every link."""
    _, columns, rows = TABLES[table]
    return [
        str(value)
        for row in rows
        for column, value in zip(columns, row, strict=True)
        if value is not None and (column.kind == "link" or column.kind == "key" and not column.drop)
    ]


# Below 64 the task keys alone are wider than the terminal, so tasks start at 80.
FITTING = [("alerts", 60), ("alerts", 80), ("alerts", 100), ("alerts", 160), ("tasks", 80),
           ("tasks", 100), ("tasks", 160)]


@pytest.mark.parametrize(("table", "width"), FITTING)
def test_lines_fit_the_width_unless_they_hold_a_whole_long_value(table: str, width: int) -> None:
    wide = [value for value in unbreakable(table) if len(value) > width]
    for line in render(*TABLES[table], width).splitlines():
        assert len(line) <= width or any(value in line for value in wide), line
        assert line == line.rstrip(), line


def test_a_link_wider_than_the_terminal_stands_alone_below_its_label() -> None:
    lines = render(*TABLES["alerts"], 60).splitlines()
    assert lines[lines.index("    Prefect UI:") + 1] == RUN_7


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("table", sorted(TABLES))
def test_ids_and_links_appear_unbroken(table: str, width: int) -> None:
    lines = render(*TABLES[table], width).splitlines()
    for value in unbreakable(table):
        assert any(value in line for line in lines), value


def test_a_key_longer_than_the_terminal_is_printed_whole() -> None:
    ref = "sha256:" + "ab" * 40
    columns = [Column(name="digest", kind="key"), Column(name="note")]
    lines = render("Artifacts", columns, [[ref, "imported from the old registry"]], 40).splitlines()
    assert lines[3] == f"{ref}  imported"


@pytest.mark.parametrize("table", sorted(TABLES))
def test_piped_output_has_one_line_per_record_and_every_column(table: str) -> None:
    title, columns, rows = TABLES[table]
    out = render(title, columns, rows, None)
    assert out.endswith("\n") and title not in out
    lines = out.splitlines()
    assert len(lines) == len(rows) + 1
    assert [line.count("\t") for line in lines] == [len(columns) - 1] * len(lines)


@pytest.mark.parametrize(("value", "shown"), [
    (None, ""),
    (True, "yes"),
    (False, "no"),
    (0, "0"),
    (2.5, "2.5"),
    ("a\tb\r\nc\nd", "a b c d"),
])
def test_values_as_text(value: object, shown: str) -> None:
    columns = [Column(name="id", kind="key"), Column(name="value")]
    assert render("t", columns, [["x", value]], None) == f"id\tvalue\nx\t{shown}\n"
    assert render("t", columns, [["x", value]], 80).splitlines()[3] == f"x   {shown}".rstrip()


@pytest.mark.parametrize(("table", "width", "footer"), [
    ("tasks", 160, None),
    ("tasks", 100, None),
    ("tasks", 80, "(not shown at 80 columns: quorum; use --json for everything)"),
    ("tasks", 70, "(not shown at 70 columns: group, quorum; use --json for everything)"),
    ("alerts", 80, None),
    ("alerts", 70, "(not shown at 70 columns: acknowledged; use --json for everything)"),
    ("alerts", 50, "(not shown at 50 columns: opened, acknowledged; use --json for everything)"),
])
def test_dropped_columns_are_named_in_the_footer(
    table: str, width: int, footer: str | None
) -> None:
    title, columns, rows = TABLES[table]
    lines = render(title, columns, rows, width).splitlines()
    starts = [n for n, line in enumerate(lines) if line.startswith("(not shown")]
    if footer is None:
        assert starts == []
        return
    # Folded to the width like any text when the terminal is narrower than the footer.
    assert " ".join(lines[starts[0] :]) == footer
    hidden = footer.split(": ")[1].split(";")[0].split(", ")
    assert [name for name in hidden if name in lines[1].split()] == []


def test_ties_drop_the_rightmost_first_and_never_a_drop_0_column() -> None:
    columns = [
        Column(name="id", kind="key"),
        Column(name="owner", kind="key", drop=1),
        Column(name="team", kind="key", drop=1),
        Column(name="model", kind="key"),
    ]
    rows: list[list[object]] = [["a" * 10, "b" * 10, "c" * 10, "d" * 10]]
    assert render("Models", columns, rows, 34).splitlines() == [
        "Models",
        "id          owner       model",
        "----------------------------------",
        "aaaaaaaaaa  bbbbbbbbbb  dddddddddd",
        "(not shown at 34 columns: team;",
        "use --json for everything)",
    ]
    # Nothing droppable is left: the keys are printed whole, wider than the terminal.
    assert render("Models", columns, rows, 20).splitlines()[3] == "aaaaaaaaaa  dddddddddd"


def test_text_columns_share_the_room_and_keep_a_readable_minimum() -> None:
    columns = [Column(name="id", kind="key"), Column(name="summary"), Column(name="detail")]
    rows: list[list[object]] = [[1, "s" * 30, "short words that fold"]]
    assert render("Notes", columns, rows, 34).splitlines() == [
        "Notes",
        "id  summary         detail",
        "----------------------------------",
        "1   ssssssssssssss  short words",
        "    ssssssssssssss  that fold",
        "    ss",
    ]
    # detail stops at its natural 21, summary takes the rest.
    assert render("Notes", columns, rows, 50).splitlines()[3:] == [
        "1   " + "s" * 23 + "  short words that fold",
        "    sssssss",
    ]
    # At 28 both would go below 12: they keep 12 and the line runs over the width.
    assert render("Notes", columns, rows, 28).splitlines()[3] == "1   ssssssssssss  short words"


@pytest.mark.parametrize("width", [80, None])
def test_no_rows(width: int | None) -> None:
    header = "\t".join(column.name for column in TASK_COLUMNS) + "\n"
    expected = "Human tasks (0)\n(none)\n" if width else header
    assert render("Human tasks (0)", TASK_COLUMNS, [], width) == expected


def test_a_row_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 9 columns"):
        render("Human tasks", TASK_COLUMNS, [[41, "approval"]], 80)
