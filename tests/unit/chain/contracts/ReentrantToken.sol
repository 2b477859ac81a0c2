// SPDX-License-Identifier: MIT
pragma solidity 0.8.20;

import "./PaymentEscrow.sol";

/// @notice Test-only attacker: a token that is also PaymentEscrow's marketplace. Every time the
/// escrow pays out it calls back into the escrow: it records what the escrow's views show at
/// that moment (a read-only re-entrancy, which a guard cannot stop) and tries to re-enter a
/// paying function (which the guard must stop).
contract ReentrantToken {
    struct Seen {
        uint8 state;
        uint256 remaining;
        uint256 partialRecorded;
        uint256 totalLocked;
        bool reentryBlocked;
    }

    mapping(address => uint256) public balanceOf;
    PaymentEscrow public escrow;
    bytes32 private _job;
    bytes32 private _op;
    Seen[] public seen;

    function setEscrow(PaymentEscrow e) external {
        escrow = e;
    }

    function open(bytes32 job, address user, address provider, uint256 amount) external {
        balanceOf[address(escrow)] += amount;
        escrow.lockFunds(job, amount, user, provider);
    }

    function payPart(bytes32 job, uint256 amount, bytes32 op) external {
        (_job, _op) = (job, op);
        escrow.partialRelease(job, amount, op);
    }

    function settle(bytes32 job, uint256 cost) external {
        (_job, _op) = (job, bytes32(0));
        escrow.releaseFunds(job, cost);
    }

    function seenCount() external view returns (uint256) {
        return seen.length;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        require(msg.sender == address(escrow), "OnlyEscrow");
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        PaymentEscrow.EscrowRecord memory e = escrow.getEscrow(_job);
        (uint256 recorded,) = escrow.partialOps(_job, _op);
        bool blocked;
        try escrow.partialRelease(_job, 1, keccak256("reentry")) {
            blocked = false;
        } catch {
            blocked = true;
        }
        seen.push(Seen(uint8(e.state), e.remaining, recorded, escrow.totalLocked(), blocked));
        return true;
    }

    function transferFrom(address, address, uint256) external pure returns (bool) {
        revert("Unused");
    }
}
