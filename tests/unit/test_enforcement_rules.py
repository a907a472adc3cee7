"""The Enforcement Engine's rules: each strategy rule, their precedence, reasons and packets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from reference.workers.enforcement_rules import (
    RULES,
    DebtorFacts,
    Document,
    Judgment,
    Strategy,
    build_packet,
    decide_strategy,
)

EMPLOYER: dict[str, Any] = {"employer_name": "Acme Corp"}
BANK: dict[str, Any] = {"has_bank_account": True, "bank_name": "First Federal"}
BENEFITS_ONLY_BANK: dict[str, Any] = {**BANK, "bank_account_benefits_only": True}
HOME: dict[str, Any] = {"owns_home": True, "property_address": "12 Elm St, Brooklyn"}

# Fact combinations and the strategy they must give. Together they pin the order of the rules:
# swapping any two (see the test below the table) changes at least one answer.
PRECEDENCE: list[tuple[str, DebtorFacts, Strategy]] = [
    ("employer, bank and home", DebtorFacts(**EMPLOYER, **BANK, **HOME), Strategy.WAGE_GARNISHMENT),
    ("employer and bank", DebtorFacts(**EMPLOYER, **BANK), Strategy.WAGE_GARNISHMENT),
    ("employer and home", DebtorFacts(**EMPLOYER, **HOME), Strategy.WAGE_GARNISHMENT),
    ("employer only", DebtorFacts(**EMPLOYER), Strategy.WAGE_GARNISHMENT),
    ("bank and home", DebtorFacts(**BANK, **HOME), Strategy.BANK_LEVY),
    ("bank only", DebtorFacts(**BANK), Strategy.BANK_LEVY),
    (
        "benefits-only bank and home",
        DebtorFacts(**BENEFITS_ONLY_BANK, **HOME),
        Strategy.PROPERTY_LIEN,
    ),
    ("home only", DebtorFacts(**HOME), Strategy.PROPERTY_LIEN),
    ("benefits-only bank only", DebtorFacts(**BENEFITS_ONLY_BANK), Strategy.SURVEILLANCE),
    ("an empty profile", DebtorFacts(), Strategy.SURVEILLANCE),
    # Facts that look like assets but are not usable ones.
    ("blank employer name and bank", DebtorFacts(employer_name="  ", **BANK), Strategy.BANK_LEVY),
    ("bank named but no account", DebtorFacts(bank_name="First Federal"), Strategy.SURVEILLANCE),
    (
        "benefits flag without an account, and home",
        DebtorFacts(bank_account_benefits_only=True, **HOME),
        Strategy.PROPERTY_LIEN,
    ),
    (
        "property address but no home",
        DebtorFacts(property_address="1 Main St"),
        Strategy.SURVEILLANCE,
    ),
]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [(facts, expected) for _, facts, expected in PRECEDENCE],
    ids=[label for label, _, _ in PRECEDENCE],
)
def test_the_first_matching_rule_decides(facts: DebtorFacts, expected: Strategy) -> None:
    assert decide_strategy(facts).strategy is expected


@pytest.mark.parametrize("swap_at", range(len(RULES) - 1))
def test_swapping_two_rules_changes_an_answer_in_the_precedence_table(swap_at: int) -> None:
    swapped = list(RULES)
    swapped[swap_at], swapped[swap_at + 1] = swapped[swap_at + 1], swapped[swap_at]

    changed = [
        label
        for label, facts, expected in PRECEDENCE
        if decide_strategy(facts, swapped).strategy is not expected
    ]

    assert changed, "the precedence table would not notice this reordering"


def test_no_profile_is_surveillance_saying_nothing_is_known() -> None:
    decision = decide_strategy(None)

    assert decision.strategy is Strategy.SURVEILLANCE
    assert decision.reason.startswith("nothing is known about the debtor (no debtor profile)")


def test_the_wage_garnishment_reason_names_the_employer() -> None:
    decision = decide_strategy(DebtorFacts(employer_name="  Acme Corp ", **BANK))

    assert decision.reason == "employer on file: Acme Corp; an income execution can garnish wages"


def test_the_bank_levy_reason_names_the_bank_when_known() -> None:
    named = decide_strategy(DebtorFacts(**BANK))
    unnamed = decide_strategy(DebtorFacts(has_bank_account=True))

    assert named.reason == (
        "bank account on file at First Federal, not benefits-only; a restraining notice and a "
        "property execution can levy it"
    )
    assert unnamed.reason.startswith("bank account on file, not benefits-only;")


def test_the_property_lien_reason_names_the_home_and_why_the_account_was_passed_over() -> None:
    with_account = decide_strategy(DebtorFacts(**BENEFITS_ONLY_BANK, **HOME))
    without_account = decide_strategy(DebtorFacts(owns_home=True))

    assert with_account.reason == (
        "owns a home at 12 Elm St, Brooklyn; a docketed judgment is a lien on the real property "
        "(the bank account holds only exempt benefits)"
    )
    assert without_account.reason == (
        "owns a home; a docketed judgment is a lien on the real property"
    )


def test_the_surveillance_reason_for_a_profile_says_no_asset_is_on_file() -> None:
    decision = decide_strategy(DebtorFacts(**BENEFITS_ONLY_BANK))

    assert decision.reason == (
        "no employer, levyable bank account or real property on file; information subpoenas "
        "and an asset search come first"
    )


JUDGMENT = Judgment(
    case_number="CV-2024-000123",
    plaintiff="Dragonfly Capital LLC",
    defendant="Jane Roe",
    judgment_amount=Decimal("4210.55"),
    county="Kings",
)

# (strategy, the document codes in order, each fee, the total): the fee table of the packets.
PACKETS = [
    (
        Strategy.WAGE_GARNISHMENT,
        ["income_execution", "information_subpoena_employer"],
        ["86.00", "25.00"],
        "111.00",
    ),
    (
        Strategy.BANK_LEVY,
        ["restraining_notice_bank", "property_execution_bank"],
        ["25.00", "40.00"],
        "65.00",
    ),
    (
        Strategy.PROPERTY_LIEN,
        ["transcript_of_judgment", "property_execution_real_property"],
        ["25.00", "60.00"],
        "85.00",
    ),
    (
        Strategy.SURVEILLANCE,
        ["information_subpoena_debtor", "information_subpoena_bank", "asset_search"],
        ["25.00", "25.00", "75.00"],
        "125.00",
    ),
]


@pytest.mark.parametrize(
    ("strategy", "codes", "fees", "total"), PACKETS, ids=[p[0].value for p in PACKETS]
)
def test_each_strategy_has_its_documents_fees_and_total(
    strategy: Strategy, codes: list[str], fees: list[str], total: str
) -> None:
    packet = build_packet(strategy, JUDGMENT)

    assert [document.code for document in packet.documents] == codes
    assert [document.fee for document in packet.documents] == [Decimal(fee) for fee in fees]
    assert packet.total_fees == Decimal(total)
    assert str(packet.total_fees) == total


@pytest.mark.parametrize(
    ("strategy", "cited"),
    [
        (Strategy.WAGE_GARNISHMENT, ["CPLR 5231", "CPLR 5224, 5222"]),
        (Strategy.BANK_LEVY, ["CPLR 5222", "CPLR 5230"]),
        (Strategy.PROPERTY_LIEN, ["CPLR 5018", "CPLR 5230"]),
        (Strategy.SURVEILLANCE, ["CPLR 5224", "CPLR 5224", "Asset search"]),
    ],
)
def test_each_document_title_names_its_authority(strategy: Strategy, cited: list[str]) -> None:
    titles = [document.title for document in build_packet(strategy, JUDGMENT).documents]

    assert all(text in title for text, title in zip(cited, titles, strict=True))


def test_every_strategy_has_a_packet_and_no_two_packets_are_the_same() -> None:
    packets = {strategy: build_packet(strategy, JUDGMENT) for strategy in Strategy}

    codes = {tuple(d.code for d in packet.documents) for packet in packets.values()}
    assert len(codes) == len(Strategy)
    assert all(packet.total_fees > 0 for packet in packets.values())


def test_a_strategy_given_as_its_database_label_builds_the_same_packet() -> None:
    assert build_packet("bank_levy", JUDGMENT) == build_packet(Strategy.BANK_LEVY, JUDGMENT)
    with pytest.raises(ValueError, match="garnish"):
        build_packet("garnish", JUDGMENT)


@pytest.mark.parametrize(
    ("county", "clerk"),
    [
        ("Kings", "docketed with the Kings County Clerk,"),
        ("Nassau County", "docketed with the Nassau County Clerk,"),
        (None, "docketed with the clerk of the county where the property lies,"),
        ("  ", "docketed with the clerk of the county where the property lies,"),
    ],
)
def test_the_transcript_names_the_county_clerk(county: str | None, clerk: str) -> None:
    judgment = Judgment("CV-1", "Dragonfly Capital LLC", "Jane Roe", county=county)

    transcript = build_packet(Strategy.PROPERTY_LIEN, judgment).documents[0]

    assert clerk in transcript.title


def test_the_debtor_subpoena_names_the_defendant() -> None:
    subpoena = build_packet(Strategy.SURVEILLANCE, JUDGMENT).documents[0]

    assert subpoena.title.endswith("to the debtor, Jane Roe")


def test_a_document_is_stored_with_its_fee_as_a_two_place_string() -> None:
    assert Document("asset_search", "Asset search", Decimal("75")).as_json() == {
        "code": "asset_search",
        "title": "Asset search",
        "fee": "75.00",
    }
