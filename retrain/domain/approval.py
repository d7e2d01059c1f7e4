"""Reviewer approval: who may decide, how a reviewer proves it, and when the reviewers have decided.

Pure rules, no Prefect: the flow collects ballots (from the Prefect UI form or ``retrain approve``)
and asks this module whether each one counts and whether a quorum is reached. A ballot counts only
if its reviewer is listed, did not trigger the training, signed exactly this answer with their own
key, and has not already decided; a rejection needs a reason. One counted rejection refuses the
promotion; ``quorum`` distinct counted approvals accept it.

A reviewer proves their answer with an Ed25519 signature over a canonical, domain-separated message
naming the flow run, the registered model, the challenger version and its training key, the
reviewer, the decision and the comment. So a signature says one thing about one run: replayed on
another run, or with another decision, comment or version, it verifies as nothing. Only the
reviewer's private key can make one, and only public keys (committed in the project) check them.

The signature maths (``cryptography``'s Ed25519) lives here rather than in an adapter on purpose:
it is pure computation on bytes, with no I/O and no service, and the CLI that signs and the flow
that verifies must build the very same message with the very same code. Reading and writing key
files is I/O and lives in :mod:`retrain.adapters.reviewer_keys`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Final, Literal

from retrain.domain.gate import Check
from retrain.domain.settings import ApprovalSettings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

APPROVE: Final = "approve"
REJECT: Final = "reject"
Decision = Literal["approve", "reject"]
SIGNATURE_LENGTH: Final = 86  # 64 bytes, URL-safe base64 without padding
_MESSAGE_CONTEXT: Final = b"retrain-approval-signature:v1\n"
PUBLIC_KEY_TYPE: Final = "ssh-ed25519"


def normalise(name: str) -> str:
    """Names compare case- and space-insensitively: 'Alice ' and 'alice' are one person."""
    return " ".join(name.split()).casefold()


def canonical_comment(comment: str) -> str:
    """The comment as signed: line endings unified and outer/trailing blanks dropped, so the text a
    reviewer signed at the terminal and the text a browser form sends back compare equal."""
    lines = comment.replace("\r\n", "\n").replace("\r", "\n").strip().split("\n")
    return "\n".join(line.rstrip() for line in lines)


@dataclass(frozen=True)
class ApprovalSubject:
    """What the reviewers decide about: one paused flow run and the challenger it would promote.

    The run publishes it next to its pause so ``retrain approve``/``sign`` know what to sign; the run
    itself verifies against its own values, never against what a client sends back.
    """

    flow_run_id: str
    registered_model: str
    challenger_version: str
    training_key: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ApprovalSubject:
        raw = json.loads(text)
        return cls(
            flow_run_id=str(raw["flow_run_id"]),
            registered_model=str(raw["registered_model"]),
            challenger_version=str(raw["challenger_version"]),
            training_key=str(raw["training_key"]),
        )


def approval_message(subject: ApprovalSubject, reviewer: str, decision: str, comment: str) -> bytes:
    """The exact bytes a reviewer signs: a fixed context (so a signature made for anything else
    never verifies here) followed by canonical JSON (sorted keys, no spaces, UTF-8)."""
    payload = {
        **asdict(subject),
        "reviewer": normalise(reviewer),
        "decision": decision,
        "comment": canonical_comment(comment),
    }
    return _MESSAGE_CONTEXT + json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_answer(
    private_key: Ed25519PrivateKey, subject: ApprovalSubject, reviewer: str, decision: str, comment: str
) -> str:
    """A reviewer's signature of one answer about one run, as text to paste or send."""
    signature = private_key.sign(approval_message(subject, reviewer, decision, comment))
    return base64.urlsafe_b64encode(signature).decode("ascii").rstrip("=")


def parse_public_key(text: str) -> bytes:
    """The raw 32-byte Ed25519 key from an OpenSSH public key line (``ssh-ed25519 AAAA… comment``).

    Raises ``ValueError`` with a short reason for anything else (another key type, garbage).
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_public_key

    parts = text.strip().split()
    if len(parts) < 2 or parts[0] != PUBLIC_KEY_TYPE:
        raise ValueError(f"not an Ed25519 public key (expected a line starting '{PUBLIC_KEY_TYPE} ')")
    try:
        key = load_ssh_public_key(" ".join(parts[:2]).encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("the Ed25519 public key does not parse") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def format_public_key(public_key: bytes, reviewer: str) -> str:
    """The OpenSSH line committed as ``NAME.pub`` (readable in a review, loadable by ssh tools)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PublicKey.from_public_bytes(public_key)
    line = key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")
    return f"{line} retrain-reviewer:{reviewer}\n"


def signature_valid(public_key: bytes, message: bytes, signature: str) -> bool:
    """Does ``signature`` (as ``sign_answer`` writes it) sign ``message`` under ``public_key``?"""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = signature.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(raw, message)
    except (InvalidSignature, ValueError):
        return False
    return True


Proof = Literal["valid", "invalid", "no_key"]


def prove(
    keys: Mapping[str, bytes], subject: ApprovalSubject, reviewer: str, decision: str, comment: str, signature: str
) -> Proof:
    """Check one answer's signature against the listed reviewer's public key (``keys`` by normalised name)."""
    public_key = keys.get(normalise(reviewer))
    if public_key is None:
        return "no_key"
    message = approval_message(subject, reviewer, decision, comment)
    return "valid" if signature_valid(public_key, message, signature) else "invalid"


def reviewers_without_keys(policy: ApprovalSettings, keys: Mapping[str, bytes]) -> list[str]:
    """Listed reviewers who could never prove an answer: the start-up check refuses to train for them."""
    return [name for name in policy.reviewers if normalise(name) not in keys]


@dataclass(frozen=True)
class Ballot:
    """One reviewer's answer, with its signature already checked (the signature itself is not kept)."""

    decision: Decision
    reviewer: str
    comment: str
    proof: Proof


@dataclass(frozen=True)
class BallotVerdict:
    counted: bool
    message: str


def judge_ballot(
    ballot: Ballot, policy: ApprovalSettings, triggered_by: str, counted: Sequence[Ballot]
) -> BallotVerdict:
    """Does this ballot count? If not, say why in words the reviewer can act on."""
    who = normalise(ballot.reviewer)
    listed = {normalise(name) for name in policy.reviewers}
    if who not in listed:
        return BallotVerdict(False, f"'{ballot.reviewer}' is not a listed reviewer (approval.reviewers in params.yaml)")
    if who == normalise(triggered_by):
        return BallotVerdict(False, f"'{ballot.reviewer}' triggered this training and cannot review it")
    if ballot.proof == "no_key":
        return BallotVerdict(False, f"'{ballot.reviewer}' has no public key in the project (approval.keys_dir)")
    if ballot.proof != "valid":
        return BallotVerdict(
            False,
            f"the signature is not '{ballot.reviewer}'s for this run, challenger, decision and comment "
            "(make it with `retrain sign` for this run)",
        )
    if any(normalise(earlier.reviewer) == who for earlier in counted):
        return BallotVerdict(False, f"'{ballot.reviewer}' has already decided; a quorum needs distinct reviewers")
    if ballot.decision == REJECT and not ballot.comment.strip():
        return BallotVerdict(False, "a rejection needs a reason in the comment")
    approvals = sum(1 for earlier in counted if earlier.decision == APPROVE) + (ballot.decision == APPROVE)
    progress = f" ({approvals} of {policy.quorum} approvals)" if ballot.decision == APPROVE else ""
    return BallotVerdict(True, f"{ballot.decision} by '{ballot.reviewer}' recorded{progress}")


ApprovalState = Literal["pending", "approved", "rejected", "timed_out"]


@dataclass(frozen=True)
class ApprovalResult:
    """Where the reviewers stand: the counted ballots and what they add up to."""

    state: ApprovalState
    ballots: tuple[Ballot, ...]
    quorum: int

    @property
    def reviewers(self) -> tuple[str, ...]:
        return tuple(ballot.reviewer for ballot in self.ballots)

    @property
    def comment(self) -> str:
        return " | ".join(f"{b.reviewer} ({b.decision}): {b.comment}" for b in self.ballots if b.comment.strip())

    def as_check(self) -> Check:
        """The human decision as one more gate check, stored and reported like the automatic ones."""
        approvals = float(sum(1 for ballot in self.ballots if ballot.decision == APPROVE))
        if self.state == "approved":
            reason = f"approved by {', '.join(self.reviewers)} (quorum {self.quorum})"
        elif self.state == "rejected":
            rejecter = next(b for b in self.ballots if b.decision == REJECT)
            reason = f"rejected by {rejecter.reviewer}: {rejecter.comment.strip()}"
        elif self.state == "timed_out":
            reason = f"approval timed out ({int(approvals)} of {self.quorum} approvals)"
        else:
            reason = f"awaiting reviewers ({int(approvals)} of {self.quorum} approvals)"
        return Check("reviewer_approval", self.state == "approved", approvals, float(self.quorum), reason)


def tally(counted: Sequence[Ballot], quorum: int) -> ApprovalResult:
    """One counted rejection refuses; ``quorum`` counted approvals accept; otherwise still pending."""
    ballots = tuple(counted)
    if any(ballot.decision == REJECT for ballot in ballots):
        return ApprovalResult("rejected", ballots, quorum)
    if sum(1 for ballot in ballots if ballot.decision == APPROVE) >= quorum:
        return ApprovalResult("approved", ballots, quorum)
    return ApprovalResult("pending", ballots, quorum)


def timed_out(counted: Sequence[Ballot], quorum: int) -> ApprovalResult:
    return ApprovalResult("timed_out", tuple(counted), quorum)
