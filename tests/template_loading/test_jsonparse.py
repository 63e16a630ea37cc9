"""JSON as Packer reads it: Go's syntax errors and offsets, duplicates, positions.

The expected messages and offsets were taken from packer 1.6.6 on the same inputs
(``test_validate_diff`` checks the full output against the binary).
"""

from __future__ import annotations

import pytest

from imagesmith.template.jsonparse import (
    DuplicateKeyError,
    GoScanner,
    JSONSyntaxError,
    JSONValueError,
    Locator,
    decode_first,
    format_syntax_error,
    highlight,
    loads,
    quote_char,
)

SYNTAX_CASES = [
    (
        b'{\n  "builders": [\n    {"type": "null",}\n  ]\n}',
        "invalid character '}' looking for beginning of object key string",
        39,
    ),
    (b'{"builders": [{"type": "null"', "unexpected end of JSON input", 29),
    (b"", "unexpected end of JSON input", 0),
    (b"  ", "unexpected end of JSON input", 2),
    (b'{"a" 1}', "invalid character '1' after object key", 6),
    (b'{"a": 1 "b"}', "invalid character '\"' after object key:value pair", 9),
    (b"[1 2]", "invalid character '2' after array element", 4),
    (b'{"a": tru}', "invalid character '}' in literal true (expecting 'e')", 10),
    (b'{"a": fals}', "invalid character '}' in literal false (expecting 'e')", 11),
    (b'{"a": nul}', "invalid character '}' in literal null (expecting 'l')", 10),
    (b'{"a": "\\x"}', "invalid character 'x' in string escape code", 9),
    (b'{"a": 1}x', "invalid character 'x' after top-level value", 9),
    (b'{"a": 01}', "invalid character '1' after object key:value pair", 8),
    (b'{"a": -}', "invalid character '}' in numeric literal", 8),
    (b'{"a": 1.}', "invalid character '}' after decimal point in numeric literal", 9),
    (b'{"a": 1e}', "invalid character '}' in exponent of numeric literal", 9),
    (b'{"a": "\\u12g4"}', "invalid character 'g' in \\u hexadecimal character escape", 12),
    (b"\xef\xbb\xbf{}", "invalid character '\u00ef' looking for beginning of value", 1),
    (b'{"a": NaN}', "invalid character 'N' looking for beginning of value", 7),
    (b'{"a": Infinity}', "invalid character 'I' looking for beginning of value", 7),
    (b'{"a":"\n"}', "invalid character '\\n' in string literal", 7),
    (b'{"a": \x01}', "invalid character '\\x01' looking for beginning of value", 7),
    (b"{'a': 1}", "invalid character '\\'' looking for beginning of object key string", 2),
]


@pytest.mark.parametrize(("data", "message", "offset"), SYNTAX_CASES)
def test_syntax_errors_read_as_go_reports_them(data: bytes, message: str, offset: int) -> None:
    with pytest.raises(JSONSyntaxError) as caught:
        loads(data)
    assert (caught.value.message, caught.value.offset) == (message, offset)


def test_valid_documents_pass_the_go_scanner() -> None:
    for data in [b'{"a": [1, -2.5e+3, true, false, null, "x\\u00e9"]}', b" [] ", b'"s"', b"0"]:
        GoScanner(data).check_valid()
        loads(data)


def test_syntax_error_picture_matches_packer() -> None:
    data = b'{\n  "builders": [\n    {"type": "null",}\n  ]\n}'
    with pytest.raises(JSONSyntaxError) as caught:
        loads(data)
    assert format_syntax_error(data, caught.value) == (
        "Error parsing JSON: invalid character '}' looking for beginning of object key string\n"
        "At line 3, column 22 (offset 39):\n"
        '    2:   "builders": [\n'
        '    3:     {"type": "null",}\n'
        "                           ^\n"
    )


def test_highlight_counts_columns_from_zero_on_the_first_line_only() -> None:
    # Packer's own counting: column 0 at the very start, 1 after each newline.
    assert highlight(b"", 0) == (1, 0, "    1: \n     ^\n")
    assert highlight(b"{\n", 2)[:2] == (2, 1)
    assert highlight(b'{"a": 1}x', 9)[:2] == (1, 9)


def test_quote_char_follows_go() -> None:
    assert quote_char(ord("'")) == "'\\''"
    assert quote_char(ord('"')) == "'\"'"
    assert quote_char(ord("\t")) == "'\\t'"
    assert quote_char(0x7F) == "'\\x7f'"
    assert quote_char(0xA0) == "'\\u00a0'"


def test_numbers_beyond_float64_are_refused_as_go_refuses_them() -> None:
    with pytest.raises(JSONValueError, match="cannot unmarshal number 1e999 into Go value"):
        loads(b'{"a": 1e999}')
    with pytest.raises(JSONValueError):
        loads(b'{"a": 1' + b"0" * 400 + b"}")


def test_duplicate_keys_are_reported_in_document_order() -> None:
    cases = [
        (b'{"a": 1, "a": 2, "z": {"x": 1, "x": 2}}', "a", 1),
        (b'{"z": {"x": 1, "x": 2}, "a": 1, "a": 2}', "x", 1),
        (b'{"b": [{"type": "null", "b": 1,\n "b": 2}], "foo": 1}', "b", 2),
        (b'{"variables": {\n"a": "1",\n\n"a": "2"}}', "a", 4),
    ]
    for data, key, line in cases:
        with pytest.raises(DuplicateKeyError) as caught:
            loads(data)
        assert (caught.value.key, caught.value.line) == (key, line)
        assert str(caught.value) == f"template has duplicate field: {key}"


def test_keys_differing_in_case_are_not_duplicates() -> None:
    assert loads(b'{"Builders": 1, "builders": 2}') == {"Builders": 1, "builders": 2}


def test_syntax_errors_win_over_duplicates() -> None:
    with pytest.raises(JSONSyntaxError):
        loads(b'{"a": 1, "a": 2')


def test_locator_gives_the_line_of_keys_and_elements() -> None:
    locator = Locator(b'{\n "a": {\n  "x": 1},\n "b": [\n  1,\n  {"c": true}],\n "e\\"q": 3}')
    assert locator.line(("a",)) == 2
    assert locator.line(("a", "x")) == 3
    assert locator.line(("b",)) == 4
    assert locator.line(("b", 0)) == 5
    assert locator.line(("b", 1, "c")) == 6
    assert locator.line(('e"q',)) == 7
    # Unknown paths fall back to their closest known parent.
    assert locator.line(("b", 7)) == 4
    assert locator.line(("nope",)) == 1


def test_decode_first_reads_one_value_as_go_decoder_does() -> None:
    assert decode_first(b'{"a": "x"} {}') == {"a": "x"}
    assert decode_first(b'{"a": "x"}garbage') == {"a": "x"}
    assert decode_first(b" 12 ") == 12
    assert decode_first(b"null") is None
    for data, message in [
        (b"", "EOF"),
        (b" \n ", "EOF"),
        (b'{"a": "x"', "unexpected EOF"),
        (b"tru", "unexpected EOF"),
        (b'{"a" 1}', "invalid character '1' after object key"),
        (b"x", "invalid character 'x' looking for beginning of value"),
    ]:
        with pytest.raises(JSONSyntaxError) as caught:
            decode_first(data)
        assert caught.value.message == message


def test_absurd_nesting_is_a_clear_error_not_a_crash() -> None:
    with pytest.raises(JSONValueError, match="nested too deeply"):
        loads(b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}")
