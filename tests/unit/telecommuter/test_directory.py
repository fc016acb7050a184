"""Which called numbers are ours: the immutable ``Directory`` snapshot the SIP thread reads, and ``LiveDirectory``
swapping in a new one whenever users or desks change."""

from __future__ import annotations

import pytest

from b2bua.control.interfaces import Local
from b2bua.telecommuter.dialplan import Dialplan
from b2bua.telecommuter.directory import Directory
from b2bua.telecommuter.users import Desk, Mode, User
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import MOBILE, make_user

PLAN = Dialplan("DE", "[0-9]{2,6}")
ANN = User("ann", "Ann", "201", "+493012345678", "", Mode.OFF, "standard", "", False, 0.0)
BO = User("bo", "Bo", "202", "+441632960001", "", Mode.OFF, "standard", "", False, 0.0)  # a UK DID
DESKS = [Desk("300", "", "sip:300@pbx"), Desk("301", "", "sip:301@pbx", occupant="bo")]


@pytest.fixture
def directory() -> Directory:
    return Directory.build(PLAN, [ANN, BO], DESKS, ["+4930555"], frozenset({"pbx"}))


@pytest.mark.parametrize("called", ["+493012345678", "493012345678", "00493012345678", "03012345678"])
def test_every_reading_of_a_home_did_finds_its_user(directory: Directory, called: str) -> None:
    assert directory.lookup(called, "carrier") == Local("ann")


def test_a_foreign_did_has_no_national_reading(directory: Directory) -> None:
    assert directory.lookup("441632960001", "carrier") == Local("bo")
    assert directory.lookup("00441632960001", "carrier") == Local("bo")
    assert directory.lookup("01632960001", "carrier") is None


def test_extensions_only_from_extension_trunks(directory: Directory) -> None:
    assert directory.lookup("201", "pbx") == Local("ann")
    assert directory.lookup("201", "carrier") is None
    assert directory.lookup("299", "pbx") == Local("", 404, "unknown-extension")


def test_desks_ring_their_occupant_or_are_unavailable(directory: Directory) -> None:
    assert directory.lookup("301", "pbx") == Local("bo")
    assert directory.lookup("300", "pbx") == Local("", 480, "desk-free")


def test_emergency_numbers_are_never_ours(directory: Directory) -> None:
    assert directory.lookup("112", "pbx") is None and directory.lookup("110", "pbx") is None


def test_owned_ranges_refuse_numbers_nobody_has(directory: Directory) -> None:
    for called in ("+4930555123", "4930555123", "004930555123", "030555123"):
        assert directory.lookup(called, "carrier") == Local("", 404, "unknown-number"), called
    assert directory.lookup("4930666123", "carrier") is None


def test_an_empty_directory_owns_nothing() -> None:
    empty = Directory(PLAN)
    assert empty.lookup("493012345678", "carrier") is None and empty.lookup("201", "pbx") is None


def test_dial_characters_are_ignored(directory: Directory) -> None:
    assert directory.lookup("+49 (30) 1234-5678", "carrier") == Local("ann")


# ------------------------------------------------------------------------------------------ the live directory
async def test_live_directory_follows_users(t: InProcess) -> None:
    live = t.domain.policy.directory
    first = live.current
    u = make_user(t, "201")
    assert live.current is not first, "a new snapshot is swapped in"
    assert first.lookup("201", "pbx") == Local("", 404, "unknown-extension"), "the old snapshot never changes"
    assert live.lookup("201", "pbx") == Local(u.id)
    u = t.domain.accounts.update(u, extension="202")
    assert live.lookup("201", "pbx").reason == "unknown-extension" and live.lookup("202", "pbx") == Local(u.id)
    t.domain.accounts.delete(u)
    assert live.lookup("202", "pbx").reason == "unknown-extension"


async def test_live_directory_follows_desks(t: InProcess) -> None:
    live = t.domain.policy.directory
    u = make_user(t, "201")
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    assert live.lookup("300", "pbx") == Local("", 480, "desk-free")
    t.domain.desks.login(u, "300")
    assert live.lookup("300", "pbx") == Local(u.id)
    u, _ = t.domain.modes.set(u, Mode.ON_DEMAND, MOBILE, False)  # telecommuting: off the desk
    assert live.lookup("300", "pbx") == Local("", 480, "desk-free")
    t.domain.modes.set(u, Mode.OFF, None, False)  # back: at the desk again
    assert live.lookup("300", "pbx") == Local(u.id)
    t.domain.desks.logout(u)
    assert live.lookup("300", "pbx") == Local("", 480, "desk-free")
    t.domain.desks.delete("300")
    assert live.lookup("300", "pbx") == Local("", 404, "unknown-extension")
