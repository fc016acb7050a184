"""Every way a carrier writes a business number (DID) reaches its user, per home region: E.164, country code +
number, the region's international prefix(es), trunk prefix + national number, the bare national significant
number, ``tel:`` URIs with portability parameters, ``sip:`` users with ``;npdi;rn=``. Other users' numbers and
numbers of nobody do not; an owned range still answers 404; ambiguity is refused, never guessed.

The expected readings are written out here from the numbering plans, not computed with the product's code."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.control.interfaces import Local
from b2bua.sip.message import called_number
from b2bua.telecommuter.dialplan import Dialplan
from b2bua.telecommuter.directory import Directory
from b2bua.telecommuter.users import Mode, User


@dataclass(frozen=True)
class Region:
    cc: str
    nsn: str  # the user's national significant number
    other_nsn: str  # another user's, in the same range
    range_nsn: str  # the owned range, as a national prefix
    unknown_nsn: str  # in the range, nobody's
    intl: tuple[str, ...]  # the region's international prefixes
    trunk: str  # trunk (national) prefix; "" where the plan has none
    foreign_intl: str  # an international prefix of elsewhere: no reading here


REGIONS = {
    "US": Region("1", "2025550177", "2025550123", "202555", "2025550999", ("011", "00"), "1", "810"),
    "DE": Region("49", "3012345678", "3012345679", "30123", "3012399999", ("00",), "0", "011"),
    "GB": Region("44", "2079460123", "2079460124", "207946", "2079460999", ("00",), "0", "011"),
    "IL": Region("972", "25012345", "25012346", "25012", "25012999",
                 ("00", "012", "013", "014", "015", "016", "017", "018", "019"), "0", "011"),
    "PL": Region("48", "221234567", "221234568", "22123", "221239999", ("00",), "", "011"),
    "IT": Region("39", "0612345678", "0612345679", "06123", "0612399999", ("00",), "", "011"),
}
ROUTING_NUMBER = "+19999999999"  # a ported-to switch: never routed on


def user(uid: str, extension: str, business: str) -> User:
    return User(uid, uid.title(), extension, business, "", Mode.OFF, "standard", "", False, 0.0)


def directory(region: str, internal: str = "[0-9]{2,6}") -> Directory:
    r = REGIONS[region]
    users = [user("ann", "201", f"+{r.cc}{r.nsn}"), user("bo", "202", f"+{r.cc}{r.other_nsn}")]
    return Directory.build(Dialplan(region, internal), users, [], [f"+{r.cc}{r.range_nsn}"], frozenset({"pbx"}))


def readings(r: Region, nsn: str) -> list[str]:
    """Every form of +<cc><nsn>, as the user part or whole Request-URI a carrier sends."""
    e164, digits = f"+{r.cc}{nsn}", f"{r.cc}{nsn}"
    grouped = f"{nsn[:2]}-{nsn[2:5]}.{nsn[5:]}"
    forms = [e164, digits, *(p + digits for p in r.intl), nsn,
             f"tel:{e164};npdi;rn={ROUTING_NUMBER}", f"tel:+{r.cc}-{grouped}", f"tel:{nsn};phone-context=+{r.cc}",
             f"tel:({nsn[:2]}){nsn[2:]};phone-context=+{r.cc}", f"tel:{e164};rn={ROUTING_NUMBER};npdi",
             f"sip:{e164};npdi;rn={ROUTING_NUMBER}@127.0.0.1;user=phone",
             f"sip:{nsn};phone-context=+{r.cc}@127.0.0.1;user=phone", f"<sip:{digits}@127.0.0.1:5060>"]
    return forms + ([r.trunk + nsn] if r.trunk else [])


def lookup(d: Directory, reading: str, trunk: str = "carrier") -> Local | None:
    """What screening does: the number out of the Request-URI (if it is one), then the directory."""
    return d.lookup(called_number(reading) if ":" in reading else reading, trunk)


CASES = [(region, reading) for region, r in REGIONS.items() for reading in readings(r, r.nsn)]


@pytest.mark.parametrize(("region", "reading"), CASES, ids=[f"{g}:{x}" for g, x in CASES])
def test_every_reading_of_a_did_rings_its_user(region: str, reading: str) -> None:
    d = directory(region)
    assert lookup(d, reading) == Local("ann")
    assert lookup(d, reading, "pbx") == Local("ann"), "a PBX dialling the DID reaches the user too"


@pytest.mark.parametrize("region", REGIONS)
def test_another_users_readings_ring_that_user(region: str) -> None:
    d, r = directory(region), REGIONS[region]
    assert {reading: lookup(d, reading) for reading in readings(r, r.other_nsn)} == {
        reading: Local("bo") for reading in readings(r, r.other_nsn)}


@pytest.mark.parametrize("region", REGIONS)
def test_every_reading_of_a_free_number_in_an_owned_range_is_404(region: str) -> None:
    d, r = directory(region), REGIONS[region]
    got = {reading: lookup(d, reading) for reading in readings(r, r.unknown_nsn)}
    assert got == {reading: Local("", 404, "unknown-number") for reading in got}


@pytest.mark.parametrize("region", REGIONS)
def test_numbers_outside_our_ranges_are_not_ours(region: str) -> None:
    d, r = directory(region), REGIONS[region]
    outside = "9" + r.nsn[1:] if r.nsn[0] != "9" else "8" + r.nsn[1:]
    for reading in readings(r, outside):
        assert lookup(d, reading) is None, reading
    assert lookup(d, f"+{int(r.cc) + 1}{r.nsn}") is None, "the same national number in another country"


@pytest.mark.parametrize("region", REGIONS)
def test_another_regions_international_prefix_is_no_reading(region: str) -> None:
    d, r = directory(region), REGIONS[region]
    assert lookup(d, f"{r.foreign_intl}{r.cc}{r.nsn}") is None


@pytest.mark.parametrize("region", ["PL", "IT"])
def test_a_plan_without_trunk_prefix_has_no_trunk_prefix_reading(region: str) -> None:
    d, r = directory(region), REGIONS[region]
    assert lookup(d, "0" + r.nsn) != Local("ann")


def test_a_national_number_is_never_a_truncated_routing_number() -> None:
    """``;rn=`` names the switch the number was ported to: our user is found by the dialled number, and a
    number ported to *us* that is nobody's is not made into the routing number's owner."""
    d = directory("US")
    assert lookup(d, "tel:+12025550177;npdi;rn=+12025550123") == Local("ann")
    assert lookup(d, "sip:+14155550100;npdi;rn=+12025550177@127.0.0.1;user=phone") is None
    assert d.lookup("+14155550100;npdi;rn=+12025550177", "carrier") is None, "a raw user part with parameters"
    assert d.lookup("2025550177;npdi", "carrier") == Local("ann")


def test_a_phone_context_that_is_a_domain_adds_nothing() -> None:
    d = directory("DE")
    assert lookup(d, "tel:3012345678;phone-context=example.com") == Local("ann")
    assert lookup(d, "tel:3012345678;phone-context=+1") is None, "the same digits in NANP are not our number"


def test_extensions_win_on_extension_trunks_dids_on_the_others() -> None:
    """A national significant number that also matches the extension pattern (Italy has 6-digit ones): from a
    PBX (extension trunk) it is the extension, as before; from a carrier it is the DID reading."""
    plan = Dialplan("IT", "[0-9]{2,6}")
    users = [user("ann", "201", "+39061234"), user("bo", "061234", "+390612345679")]
    d = Directory.build(plan, users, [], [], frozenset({"pbx"}))
    assert d.lookup("061234", "pbx") == Local("bo")
    assert d.lookup("061234", "carrier") == Local("ann")
    assert d.lookup("201", "carrier") is None and d.lookup("201", "pbx") == Local("ann")


def test_bare_readings_two_numbers_share_are_refused_not_guessed() -> None:
    """+49 4921 11234567 (Emden area, national number 492111234567) and +49 211 1234567 (Düsseldorf, written
    without '+' as 492111234567): that reading is both; every other reading still finds its user."""
    plan = Dialplan("DE", "[0-9]{2,6}")
    users = [user("ann", "201", "+49492111234567"), user("bo", "202", "+492111234567")]
    d = Directory.build(plan, users, [], [], frozenset())
    assert d.lookup("492111234567", "carrier") == Local("", 485, "ambiguous-number")
    assert d.lookup("+49492111234567", "carrier") == Local("ann") and d.lookup("0492111234567", "x") == Local("ann")
    assert d.lookup("+492111234567", "carrier") == Local("bo") and d.lookup("02111234567", "x") == Local("bo")
    assert d.lookup("2111234567", "carrier") == Local("bo")


def test_an_owned_range_in_national_form_needs_a_possible_length() -> None:
    """The bare national form of a range is only trusted at a length the plan allows (US: 10 digits), so a
    short code that happens to start like the range is still routed on."""
    d = directory("US")
    assert lookup(d, "2025550999") == Local("", 404, "unknown-number")
    assert lookup(d, "2025559") is None and lookup(d, "20255509991") is None


# ---------------------------------------------------------------------------------------- no misrouting, ever
@settings(max_examples=60, deadline=None)
@given(region=st.sampled_from(sorted(REGIONS)),
       tails=st.lists(st.text("0123456789", min_size=4, max_size=4), min_size=2, max_size=6, unique=True),
       reading=st.integers(0, 30))
def test_a_reading_never_reaches_another_user(region: str, tails: list[str], reading: int) -> None:
    """Several users in one range: any reading of any one of them reaches that user and nobody else."""
    r = REGIONS[region]
    nsns = [r.nsn[:-4] + t for t in tails]
    users = [user(f"u{i}", f"2{i:02d}", f"+{r.cc}{n}") for i, n in enumerate(nsns)]
    d = Directory.build(Dialplan(region, "[0-9]{2,6}"), users, [], [f"+{r.cc}{r.range_nsn}"], frozenset())
    for i, n in enumerate(nsns):
        forms = readings(r, n)
        assert lookup(d, forms[reading % len(forms)]) == Local(f"u{i}")
