"""The ``ketamine-grade`` command: grade your own quiz, grade a class, export grades for an LMS, regenerate the release
versions."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import grading_config
from .run import (
    QuizNotInGradebook,
    exposed_to_others,
    find_course_root,
    generate_release,
    grade_class,
    quizzes,
    self_grade,
    summary_table,
    tamper_text,
)

__all__ = ["main"]


def _self(args: argparse.Namespace) -> int:
    try:
        result = self_grade(args.quiz, args.notebook, sandbox=False if args.unsandboxed else None)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"ketamine-grade: {error}", file=sys.stderr)
        return 2
    grade = result.grade
    if not result.sandboxed:
        from .sandbox import why_unsandboxed

        print(f"note: graded without the sandbox ({why_unsandboxed()}); it ran your own code only", file=sys.stderr)
    print(f"{args.quiz}: {grade.score:g} / {grade.max_score:g} points")
    for grade_id, (score, max_score) in grade.questions.items():
        message = grade.messages.get(grade_id, "")
        first = message.splitlines()[-1] if message else ""
        print(f"  {grade_id:<12} {score:g}/{max_score:g}  {first}")
    for finding in grade.tampering:
        print(f"  note: {finding.grade_id}: {finding.problem} ({finding.detail})")
    print(f"Feedback page: {result.feedback_html}")
    return 0


def _progress(line: str) -> None:
    print(line, flush=True)  # shown as each submission is graded, also when the output goes to a pipe or a file


def _class(args: argparse.Namespace) -> int:
    from .sandbox import SandboxUnavailable

    root = find_course_root(args.root)
    if args.quiz not in quizzes(root):
        print(f"ketamine-grade: unknown quiz {args.quiz!r}; the quizzes in {root / 'source'} are "
              f"{', '.join(quizzes(root))}", file=sys.stderr)
        return 2
    if args.unsandboxed:
        print("ketamine-grade: WARNING: grading without isolation; students' code runs with your rights",
              file=sys.stderr)
    exposed = exposed_to_others(root)
    if exposed:
        print(f"ketamine-grade: WARNING: {exposed}", file=sys.stderr)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if args.jobs > cores:
        print(f"ketamine-grade: note: --jobs {args.jobs} is more than the {cores} core(s) this command may use; "
              f"it will not be faster than --jobs {cores} and needs more memory", file=sys.stderr)
    try:
        results = grade_class(root, args.quiz, students=sorted(set(args.student)) if args.student else None,
                              progress=_progress, sandbox=False if args.unsandboxed else None,
                              only_changed=args.changed, jobs=args.jobs)
    except (SandboxUnavailable, QuizNotInGradebook) as error:
        print(f"ketamine-grade: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ketamine-grade: stopped; grades recorded so far are in the gradebook "
              "(run again with --changed to go on)", file=sys.stderr)
        return 130
    if not results:
        print(f"nothing to grade: no {'new or changed ' if args.changed else ''}submission of {args.quiz} "
              f"under {root / 'submitted'}")
        return 0
    print(summary_table(results))
    print(tamper_text(results))
    failed = [r for r in results if r.error]
    if failed:
        print(f"ketamine-grade: {len(failed)} submission(s) could not be graded (see 'not graded' above); "
              "each one the gradebook can hold is flagged there for review in the formgrader", file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    from .check import author_check, check_text

    root = find_course_root()
    known = quizzes(root)
    unknown = [q for q in args.quizzes if q not in known]
    if unknown:
        print(f"ketamine-grade: unknown quiz {', '.join(unknown)}; choose from {', '.join(known)}", file=sys.stderr)
        return 2
    failed = False
    for quiz in args.quizzes or known:
        lines = author_check(root, quiz, sandbox=False if args.unsandboxed else None)
        print(check_text(quiz, lines))
        failed = failed or not all(line.ok for line in lines)
    return 1 if failed else 0


def _export(args: argparse.Namespace) -> int:
    from .config import grading_config
    from .export import export_files, unscored_text

    root = find_course_root(args.root)
    config = grading_config(root)
    try:
        exported = export_files(config.CourseDirectory.db_url, config.CourseDirectory.course_id, args.out,
                                args.quiz or None, args.section, submitted=root / "submitted",
                                missing_zero=args.missing_zero)
    except ValueError as error:
        print(f"ketamine-grade: {error}", file=sys.stderr)
        return 2
    for path in exported.files:
        print(f"wrote {path}")
    print(unscored_text(exported.unscored, exported.quizzes))
    return 0


def _jobs(text: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--jobs takes a whole number of workers, not {text!r}") from None
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be at least 1, not {jobs}")
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ketamine-grade", description="Grade the course's quizzes with nbgrader.")
    commands = parser.add_subparsers(dest="command", required=True)
    mine = commands.add_parser("self", help="grade your own quiz and write a feedback page (no instructor needed)")
    mine.add_argument("quiz", help="the quiz's name, e.g. quiz03_pharmacokinetics")
    mine.add_argument("notebook", nargs="?", type=Path, help="your notebook (default: release/QUIZ/QUIZ.ipynb)")
    mine.add_argument("--unsandboxed", action="store_true", help="run without isolation even where it is available")
    klass = commands.add_parser("class", help="instructors: autograde every submission of a quiz in one process")
    klass.add_argument("quiz", help="any quiz in source/")
    klass.add_argument("--student", action="append", metavar="ID", help="grade only this student (repeatable)")
    klass.add_argument("--changed", action="store_true",
                       help="grade only submissions that are new or changed since they were last graded")
    klass.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                       help="grade N submissions at once, each in its own worker and sandbox "
                       "(same grades; about N times faster on N cores; default 1)")
    klass.add_argument("--root", type=Path, default=None,
                       help="course folder (default: the one holding nbgrader_config.py)")
    klass.add_argument("--unsandboxed", action="store_true",
                       help="DANGEROUS: run students' code with your rights "
                       "(only if the sandbox cannot run here and you trust the code)")
    check = commands.add_parser("check",
                                help="authors: grade the solution, a blank copy and one wrong answer per question")
    check.add_argument("quizzes", nargs="*", metavar="QUIZ", help="default: all")
    check.add_argument("--unsandboxed", action="store_true", help="run without isolation (your own quiz's code only)")
    export = commands.add_parser("export", help="instructors: grades for Canvas and Moodle "
                                 "(CSV, per quiz and per question, late penalties applied)")
    export.add_argument("--quiz", action="append", metavar="QUIZ",
                        help="export only this quiz (repeatable; default: every quiz in the gradebook)")
    export.add_argument("--out", type=Path, default=Path("grades"),
                        help="folder for canvas.csv, canvas_questions.csv, moodle.csv, moodle_questions.csv "
                        "(default: grades/)")
    export.add_argument("--section", default="",
                        help="Canvas section name to write in the Section column (default: blank)")
    export.add_argument("--missing-zero", action="store_true",
                        help="score 0 for a quiz a student did not submit (default: blank, which the LMS imports as "
                        "'no change'); submissions not yet graded, flagged or awaiting manual grading stay blank")
    export.add_argument("--root", type=Path, default=None,
                        help="course folder (default: the one holding nbgrader_config.py)")
    commands.add_parser("doctor",
                        help="what this machine gives the grader: Python, where things live, the sandbox, the limits")
    release = commands.add_parser("release", help="maintainers: regenerate release/ from source/")
    release.add_argument("quizzes", nargs="*", metavar="QUIZ", help="default: all")
    args = parser.parse_args(argv)

    if args.command == "self":
        return _self(args)
    if args.command == "class":
        return _class(args)
    if args.command == "check":
        return _check(args)
    if args.command == "export":
        return _export(args)
    if args.command == "doctor":
        from .doctor import report

        text, status = report()
        print(text)
        return status
    root = find_course_root()
    known = quizzes(root)
    unknown = [q for q in args.quizzes if q not in known]
    if unknown:
        parser.error(f"unknown quiz {', '.join(unknown)}; choose from {', '.join(known)}")
    gradebook = Path(str(grading_config(root).CourseDirectory.db_url).removeprefix("sqlite:///"))
    db_url = f"sqlite:///{gradebook}" if gradebook.is_file() else None  # keep the gradebook's copy of the tests current
    for quiz in args.quizzes or known:
        print(f"regenerated {generate_release(root, quiz, db_url=db_url)}")
    if db_url:
        print(f"updated the hidden tests in {gradebook}; regrade with: ketamine-grade class QUIZ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
