"""The Enforcement Engine's rules: which strategy collects a judgment, and the packet it needs.

Pure functions over frozen dataclasses; reading and writing rows is the engine's business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

CENTS = Decimal("0.01")


class Strategy(StrEnum):
    """The labels of the Postgres enum enforcement.strategy."""

    WAGE_GARNISHMENT = "wage_garnishment"
    BANK_LEVY = "bank_levy"
    PROPERTY_LIEN = "property_lien"
    SURVEILLANCE = "surveillance"


@dataclass(frozen=True)
class DebtorFacts:
    """What is known about a debtor: the columns of public.debtor_profiles the rules read."""

    employer_name: str | None = None
    employer_address: str | None = None
    has_bank_account: bool = False
    bank_name: str | None = None
    bank_account_benefits_only: bool = False
    owns_home: bool = False
    property_address: str | None = None


@dataclass(frozen=True)
class Judgment:
    """The parts of a public.judgments row that a packet names."""

    case_number: str
    plaintiff: str
    defendant: str
    judgment_amount: Decimal | None = None
    county: str | None = None


@dataclass(frozen=True)
class Decision:
    strategy: Strategy
    reason: str  # a sentence naming the fact that decided it


@dataclass(frozen=True)
class Document:
    code: str  # stable identifier, e.g. "income_execution"
    title: str
    fee: Decimal

    def as_json(self) -> dict[str, Any]:
        """The document as stored in draft_packets.documents: the fee as a string like "25.00"."""
        return {"code": self.code, "title": self.title, "fee": str(self.fee.quantize(CENTS))}


@dataclass(frozen=True)
class Packet:
    documents: list[Document]

    @property
    def total_fees(self) -> Decimal:
        return sum((document.fee for document in self.documents), Decimal("0.00"))


# -- deciding the strategy ------------------------------------------------------------------

Rule = Callable[[DebtorFacts], Decision | None]
FIRST_STEPS = "information subpoenas and an asset search come first"


def _known(text: str | None) -> str | None:
    """The text with surrounding blanks removed; None when nothing is left."""
    stripped = (text or "").strip()
    return stripped or None


def employer_rule(facts: DebtorFacts) -> Decision | None:
    employer = _known(facts.employer_name)
    if employer is None:
        return None
    return Decision(
        Strategy.WAGE_GARNISHMENT,
        f"employer on file: {employer}; an income execution can garnish wages",
    )


def bank_account_rule(facts: DebtorFacts) -> Decision | None:
    # Exempt benefits (Social Security, SSI, public assistance) cannot be levied in New York
    # (CPLR 5205, 5222), so a benefits-only account is no target.
    if not facts.has_bank_account or facts.bank_account_benefits_only:
        return None
    bank = _known(facts.bank_name)
    where = f" at {bank}" if bank else ""
    return Decision(
        Strategy.BANK_LEVY,
        f"bank account on file{where}, not benefits-only; a restraining notice and a "
        "property execution can levy it",
    )


def home_rule(facts: DebtorFacts) -> Decision | None:
    if not facts.owns_home:
        return None
    address = _known(facts.property_address)
    where = f" at {address}" if address else ""
    reason = f"owns a home{where}; a docketed judgment is a lien on the real property"
    if facts.has_bank_account and facts.bank_account_benefits_only:  # why it was passed over
        reason += " (the bank account holds only exempt benefits)"
    return Decision(Strategy.PROPERTY_LIEN, reason)


RULES: tuple[Rule, ...] = (employer_rule, bank_account_rule, home_rule)  # order = precedence


def decide_strategy(facts: DebtorFacts | None, rules: Sequence[Rule] = RULES) -> Decision:
    """The first rule that matches decides; with none, look for assets (surveillance)."""
    if facts is None:
        return Decision(
            Strategy.SURVEILLANCE,
            f"nothing is known about the debtor (no debtor profile); {FIRST_STEPS}",
        )
    for rule in rules:
        decision = rule(facts)
        if decision is not None:
            return decision
    return Decision(
        Strategy.SURVEILLANCE,
        f"no employer, levyable bank account or real property on file; {FIRST_STEPS}",
    )


# -- the packet -----------------------------------------------------------------------------

# Illustrative defaults, not a fee schedule: real amounts vary by county and by enforcement
# officer (sheriffs' fees under CPLR 8011, county clerks' fees under CPLR 8021, process
# servers' and vendors' prices) and change with legislation.
INCOME_EXECUTION_FEE = Decimal("86.00")  # sheriff/marshal: serve the debtor, then the employer
SUBPOENA_SERVICE_FEE = Decimal("25.00")  # serving one information subpoena or restraining notice
BANK_EXECUTION_FEE = Decimal("40.00")  # sheriff/marshal: receive the execution and levy
REAL_PROPERTY_EXECUTION_FEE = Decimal("60.00")  # sheriff: receive, levy and file notice of levy
TRANSCRIPT_FEE = Decimal("25.00")  # county clerk: docket a transcript of judgment
ASSET_SEARCH_FEE = Decimal("75.00")  # vendor: property, bank and employment records search


def _county_clerk(county: str | None) -> str:
    name = _known(county)
    if name is None:
        return "the clerk of the county where the property lies"
    if name.lower().endswith(" county"):
        name = name[: -len(" county")].rstrip()
    return f"the {name} County Clerk"


def _wage_garnishment(_judgment: Judgment) -> list[Document]:
    return [
        Document(
            "income_execution",
            "Income execution (CPLR 5231), delivered to the sheriff or marshal for service on "
            "the debtor and then the employer",
            INCOME_EXECUTION_FEE,
        ),
        Document(
            "information_subpoena_employer",
            "Information subpoena with restraining notice (CPLR 5224, 5222) to the employer",
            SUBPOENA_SERVICE_FEE,
        ),
    ]


def _bank_levy(_judgment: Judgment) -> list[Document]:
    return [
        Document(
            "restraining_notice_bank",
            "Restraining notice (CPLR 5222) to the bank, with the exemption notice and "
            "exemption claim forms",
            SUBPOENA_SERVICE_FEE,
        ),
        Document(
            "property_execution_bank",
            "Property execution (CPLR 5230) to the sheriff or marshal, levying on the bank account",
            BANK_EXECUTION_FEE,
        ),
    ]


def _property_lien(judgment: Judgment) -> list[Document]:
    return [
        Document(
            "transcript_of_judgment",
            f"Transcript of judgment (CPLR 5018) docketed with {_county_clerk(judgment.county)}, "
            "a lien on the debtor's real property (CPLR 5203)",
            TRANSCRIPT_FEE,
        ),
        Document(
            "property_execution_real_property",
            "Property execution (CPLR 5230) with notice of levy on real property (CPLR 5235)",
            REAL_PROPERTY_EXECUTION_FEE,
        ),
    ]


def _surveillance(judgment: Judgment) -> list[Document]:
    return [
        Document(
            "information_subpoena_debtor",
            f"Information subpoena with questions (CPLR 5224) to the debtor, {judgment.defendant}",
            SUBPOENA_SERVICE_FEE,
        ),
        Document(
            "information_subpoena_bank",
            "Information subpoena with questions (CPLR 5224) to banks, to locate accounts",
            SUBPOENA_SERVICE_FEE,
        ),
        Document(
            "asset_search",
            "Asset search request: real property, bank and employment records",
            ASSET_SEARCH_FEE,
        ),
    ]


PACKET_DOCUMENTS: dict[Strategy, Callable[[Judgment], list[Document]]] = {
    Strategy.WAGE_GARNISHMENT: _wage_garnishment,
    Strategy.BANK_LEVY: _bank_levy,
    Strategy.PROPERTY_LIEN: _property_lien,
    Strategy.SURVEILLANCE: _surveillance,
}


def build_packet(strategy: Strategy | str, judgment: Judgment) -> Packet:
    """The documents a New York judgment creditor files or serves for the strategy."""
    return Packet(PACKET_DOCUMENTS[Strategy(strategy)](judgment))
