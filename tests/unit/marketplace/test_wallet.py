"""Wallet login: EIP-4361 text signed per EIP-191 with a real eth-account key."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from hcp.auth.tokens import Role, TokenService
from hcp.config import Settings
from hcp.errors import ValidationError, WalletAuthError
from hcp.marketplace.wallet import WalletLogin
from tests.unit.marketplace.conftest import ManualClock


@pytest.fixture
def login(sqlite_engine, settings: Settings, clock: ManualClock) -> WalletLogin:  # type: ignore[no-untyped-def]
    return WalletLogin(sqlite_engine, TokenService("k" * 40, clock=clock), settings, clock)


def _sign(acct, text: str) -> str:  # type: ignore[no-untyped-def]
    return acct.sign_message(encode_defunct(text=text)).signature.hex()


def test_round_trip_issues_a_token_for_the_checksummed_address(login: WalletLogin) -> None:
    acct = Account.create()
    ch = login.challenge(acct.address.lower(), "renter")
    assert ch.address == acct.address
    assert f"Nonce: {ch.nonce}" in ch.message and "wants you to sign in with your Ethereum account" in ch.message
    sess = login.login(acct.address, ch.nonce, _sign(acct, ch.message))
    principal = login.tokens.verify(sess.token)
    assert principal.subject == acct.address and principal.role is Role.CUSTOMER
    prov = login.challenge(acct.address, "provider")
    assert login.login(acct.address, prov.nonce, _sign(acct, prov.message)).role is Role.PROVIDER


def test_nonce_is_single_use(login: WalletLogin) -> None:
    acct = Account.create()
    ch = login.challenge(acct.address, "renter")
    sig = _sign(acct, ch.message)
    login.login(acct.address, ch.nonce, sig)
    with pytest.raises(WalletAuthError, match="already used"):
        login.login(acct.address, ch.nonce, sig)


def test_expired_challenge_is_refused(login: WalletLogin, clock: ManualClock) -> None:
    acct = Account.create()
    ch = login.challenge(acct.address, "renter")
    clock.advance(301)
    with pytest.raises(WalletAuthError, match="expired") as exc:
        login.login(acct.address, ch.nonce, _sign(acct, ch.message))
    assert exc.value.http_status == 401 and exc.value.code == "wallet_login_failed"


def test_wrong_signer_tampered_text_and_garbage_are_refused(login: WalletLogin) -> None:
    acct, other = Account.create(), Account.create()
    ch = login.challenge(acct.address, "renter")
    with pytest.raises(WalletAuthError, match="not from this address"):
        login.login(acct.address, ch.nonce, _sign(other, ch.message))
    with pytest.raises(WalletAuthError, match="not from this address"):
        login.login(acct.address, ch.nonce, _sign(acct, ch.message.replace("as customer", "as provider")))
    with pytest.raises(WalletAuthError):
        login.login(acct.address, ch.nonce, "0x1234")
    with pytest.raises(WalletAuthError, match="unknown"):
        login.login(other.address, ch.nonce, _sign(other, ch.message))
    # None of the failures consumed the nonce: the genuine signature still works once.
    assert login.login(acct.address, ch.nonce, _sign(acct, ch.message)).subject == acct.address


def test_bad_inputs(login: WalletLogin) -> None:
    with pytest.raises(ValidationError):
        login.challenge("0xnot-an-address", "renter")
    with pytest.raises(ValidationError):
        login.challenge(Account.create().address, "admin")  # a wallet can never log in as admin
