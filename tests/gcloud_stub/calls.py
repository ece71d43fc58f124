"""What a recorded gcloud call is: a read, a change, a creation (shared by the stand-in and the tests)."""

from __future__ import annotations

# The last command word of every gcloud call that changes something.
MUTATING_VERBS = frozenset(
    {
        "create",
        "enable",
        "add-iam-policy-binding",
        "remove-iam-policy-binding",
        "set-iam-policy",
        "deploy",
        "submit",
        "rsync",
        "update",
        "delete",
        "disable",
        "import",
    }
)
# The calls that bring something new into being (a second run must make none).
CREATING_VERBS = frozenset({"create", "enable", "add-iam-policy-binding"})


def command_words(argv: list[str]) -> list[str]:
    """The positional words of a call (flags are always written --name=value)."""
    words = argv[1:] if argv and argv[0] == "gcloud" else list(argv)
    return [word for word in words if not word.startswith("-")]


def verb(argv: list[str]) -> str:
    """The command's verb: the word after the command group(s), e.g. 'describe', 'deploy'."""
    words = command_words(argv)
    for word in words:
        if word in MUTATING_VERBS or word in {"describe", "list", "get-iam-policy", "version", "read", "access"}:
            return word
    return words[0] if words else ""


def is_mutating(argv: list[str]) -> bool:
    return verb(argv) in MUTATING_VERBS


def is_creating(argv: list[str]) -> bool:
    return verb(argv) in CREATING_VERBS
