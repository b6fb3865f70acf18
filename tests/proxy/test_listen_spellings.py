"""``--listen`` spellings (``parse_listen``), as operators and memcached's ``-l`` write them."""

from __future__ import annotations

import pytest

from mcpframe.errors import ServeError
from mcpframe.proxy.listeners import Listen, parse_listen, unix_listen


@pytest.mark.parametrize(
    ("text", "expected", "shown"),
    [
        ("127.0.0.1:11211", Listen("127.0.0.1", 11211), "127.0.0.1:11211"),
        ("127.0.0.1:11211:ro", Listen("127.0.0.1", 11211, "ro"), "127.0.0.1:11211:ro"),
        ("tag[ro]:127.0.0.1:11211", Listen("127.0.0.1", 11211, "ro"), "127.0.0.1:11211:ro"),
        ("tag_ro_:127.0.0.1:11211", Listen("127.0.0.1", 11211, "ro"), "127.0.0.1:11211:ro"),
        ("[::1]:11211", Listen("::1", 11211), "[::1]:11211"),
        ("unix:/run/mc.sock", unix_listen("/run/mc.sock"), "unix:/run/mc.sock:0700"),
        ("unix:/run/mc.sock:0660", unix_listen("/run/mc.sock", 0o660), "unix:/run/mc.sock:0660"),
        ("unix:/run/mc.sock:666:app", unix_listen("/run/mc.sock", 0o666, "app"),
         "unix:/run/mc.sock:0666:app"),
        ("unix:/run/mc.sock::app", unix_listen("/run/mc.sock", tag="app"),
         "unix:/run/mc.sock:0700:app"),
        ("unix:/run/mc.sock:app", unix_listen("/run/mc.sock", tag="app"),
         "unix:/run/mc.sock:0700:app"),
        ("tag[app]:unix:/run/mc.sock", unix_listen("/run/mc.sock", tag="app"),
         "unix:/run/mc.sock:0700:app"),
        ("tls:127.0.0.1:11212", Listen("127.0.0.1", 11212, tls=True), "tls:127.0.0.1:11212"),
        ("tls:tag[s]:127.0.0.1:11212", Listen("127.0.0.1", 11212, "s", tls=True),
         "tls:127.0.0.1:11212:s"),
        ("tag[s]:tls:127.0.0.1:11212", Listen("127.0.0.1", 11212, "s", tls=True),
         "tls:127.0.0.1:11212:s"),
        ("notls:127.0.0.1:11211", Listen("127.0.0.1", 11211), "127.0.0.1:11211"),
        ("tls:unix:/run/mc.sock:0600", Listen("", 0, path="/run/mc.sock", mode=0o600, tls=True),
         "tls:unix:/run/mc.sock:0600"),
    ],
)  # fmt: skip
def test_spellings(text: str, expected: Listen, shown: str) -> None:
    got = parse_listen(text)
    assert got == expected
    assert str(got) == shown
    assert parse_listen(str(got)) == got  # what the start-up line shows parses back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1", "expected [tls:]HOST:PORT[:TAG]"),
        ("127.0.0.1:0", "expected [tls:]HOST:PORT[:TAG]"),
        ("127.0.0.1:70000", "expected [tls:]HOST:PORT[:TAG]"),
        ("127.0.0.1:11211:waytoolongtag", "a tag must be 1 to 8 characters"),
        ("unix:", "the socket path is empty"),
        ("unix:/a:0660:t:x", "a socket path cannot hold ':'"),
        ("unix:/" + "x" * 107, "at most 107 bytes"),
    ],
)
def test_bad_spellings_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ServeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_listen(text)
