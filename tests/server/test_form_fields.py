"""The form field macros: every attribute reaches the browser as its own attribute."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from authmesh.server.web.render import _environment


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.inputs.append(dict(attrs))


def _input_of(source: str) -> dict[str, str | None]:
    parser = _Inputs()
    parser.feed(_environment().from_string(source).render())
    (attrs,) = parser.inputs
    return attrs


@pytest.mark.parametrize("macros", ["macros.html", "console/macros.html"])
def test_a_required_field_says_so(macros: str) -> None:
    attrs = _input_of(f'{{% import "{macros}" as m %}}{{{{ m.field("code", "Code") }}}}')
    assert "required" in attrs
    assert attrs["spellcheck"] == "false"
    optional = _input_of(
        f'{{% import "{macros}" as m %}}{{{{ m.field("x", "X", required=false) }}}}'
    )
    assert "required" not in optional


def test_the_sign_in_field_can_take_the_focus() -> None:
    source = '{% import "macros.html" as m %}{{ m.field("username", "Username", autofocus=true) }}'
    attrs = _input_of(source)
    assert "required" in attrs and "autofocus" in attrs


def test_a_console_hint_describes_its_field() -> None:
    source = '{% import "console/macros.html" as m %}{{ m.field("name", "Name", hint="Shown") }}'
    attrs = _input_of(source)
    assert attrs["aria-describedby"] == "name-hint"
