"""Exceptions that carry a message meant for the user.

    ImagesmithError            anything the CLI prints as one clear message, no traceback
    ├── TemplateError          the template file cannot be parsed or is inconsistent
    ├── ConfigError            a component's configuration failed to decode or validate
    ├── BuildError             a build step failed; the message is the build's error text
    └── CommunicatorError      a remote command or transfer could not be carried out

Any other exception reaching the CLI is a bug and is reported as such (with the
traceback only under ``-debug``).
"""

from __future__ import annotations


class ImagesmithError(Exception):
    """An error whose ``str()`` is fit to print to a user as it is."""


class TemplateError(ImagesmithError):
    """One or more problems in the template file.

    ``problems`` holds every problem found, so that a user sees them all in one run.
    """

    def __init__(self, problems: list[str], *, prefix: str = "Failed to parse template: ") -> None:
        self.problems = list(problems)
        self.prefix = prefix
        super().__init__(prefix + format_go_multierror(self.problems))


class ConfigError(ImagesmithError):
    """A component configuration is invalid. ``errors`` lists every problem found."""

    def __init__(self, errors: list[str], *, text: str | None = None) -> None:
        """``text`` replaces the MultiError rendering when the message has its own shape."""
        self.errors = list(errors)
        super().__init__(format_packer_multierror(self.errors) if text is None else text)


class BuildError(ImagesmithError):
    """A build failed; the message is what ``Build 'x' errored ...: <msg>`` shows."""


class CommunicatorError(ImagesmithError):
    """A remote command, upload or download failed."""


def format_go_multierror(errors: list[str]) -> str:
    """Render errors the way go-multierror does (parse and validation errors)."""
    if len(errors) == 1 and not errors[0].startswith("\n"):
        head = "1 error occurred:"
    else:
        head = f"{len(errors)} errors occurred:"
    return head + "".join(f"\n\t* {e}" for e in errors) + "\n\n"


def format_packer_multierror(errors: list[str]) -> str:
    """Render errors the way Packer's own MultiError does (plugin validation)."""
    return f"{len(errors)} error(s) occurred:\n\n" + "\n".join(f"* {e}" for e in errors)
