// SPDX-License-Identifier: MIT
pragma solidity 0.8.20;

import "./Guards.sol";
import "./GPUToken.sol";

/// @notice Holds each job's maximum cost and pays it out: 98% provider / 2% platform (the fee
/// floored, the provider gets the exact rest), the remainder back to the user. One record per
/// jobId; only the marketplace moves money. Same arithmetic as hcp.marketplace.escrow_backend.
/// Also holds providers' stakes: bonded, then unbonding for UNBONDING_PERIOD (still slashable),
/// then withdrawable. balanceOf(this) == totalLocked + totalStaked at all times.
/// Every state change is written before any token transfer (checks-effects-interactions).
contract PaymentEscrow is Owned, ReentrancyGuard {
    uint256 public constant PLATFORM_FEE_BPS = 200;
    uint256 public constant BPS = 10000;
    uint256 public constant UNBONDING_PERIOD = 7 days;
    uint8 public constant OP_STAKE = 1;
    uint8 public constant OP_UNSTAKE = 2;
    uint8 public constant OP_WITHDRAW = 3;

    enum EscrowState { None, Locked, Released, Refunded }

    struct EscrowRecord {
        address user;
        address provider;
        uint256 lockedAmount;   // what was locked at the start
        uint256 remaining;      // still locked now
        uint256 paidProvider;   // cumulative
        uint256 paidPlatform;   // cumulative
        uint256 refunded;       // cumulative
        // What the settling call moved (so a retried settle can report it again).
        uint256 settleProvider;
        uint256 settlePlatform;
        uint256 settleRefund;
        // How it was settled (1 release, 2 refund, 3 split) and with what (actual cost, -, bps):
        // a retried settlement is recognised as such, a different one refused.
        uint8 settledBy;
        uint256 settleParam;
        EscrowState state;
    }

    IGPUToken public immutable token;
    address public immutable platform;
    address public marketplace;
    uint256 public totalLocked;

    mapping(bytes32 => EscrowRecord) private _escrows;
    struct PartialOp {
        uint256 amount;
        uint256 remainingAfter;
    }

    mapping(bytes32 => mapping(bytes32 => PartialOp)) public partialOps; // jobId => opId => what it did

    struct StakeRecord {
        uint256 bonded;      // counts toward the marketplace's minimum stake
        uint256 unbonding;   // leaving: slashable until withdrawn
        uint256 releaseAt;   // when `unbonding` may be withdrawn (0: nothing unbonding)
    }

    // What a provider's stake operation did, by (provider, opId): a replay is a no-op.
    struct StakeOp {
        uint8 kind;
        uint256 amount;
    }

    // What a slash did, by opId: a replay (a validator retrying) slashes nothing more.
    struct SlashOp {
        bytes32 terms;       // keccak256(provider, requested amount, jobId)
        uint256 amount;      // what was taken (at most the provider's whole stake)
        address to;
    }

    uint256 public totalStaked;
    mapping(address => StakeRecord) private _stakes;
    mapping(address => mapping(bytes32 => StakeOp)) public stakeOps;
    mapping(bytes32 => SlashOp) public slashOps;

    event MarketplaceSet(address marketplace);
    event PlatformSet(address platform);
    event FundsLocked(bytes32 indexed jobId, address indexed user, address indexed provider, uint256 amount);
    event FundsReleased(bytes32 indexed jobId, address indexed provider, uint256 providerAmount, uint256 platformFee);
    event PartialReleased(bytes32 indexed jobId, bytes32 indexed opId, uint256 providerAmount, uint256 platformFee);
    event Refunded(bytes32 indexed jobId, address indexed user, uint256 amount);
    event EscrowSettled(bytes32 indexed jobId, uint8 state, uint256 providerAmount, uint256 platformFee, uint256 refunded);
    event Staked(address indexed provider, bytes32 indexed opId, uint256 amount);
    event UnstakeRequested(address indexed provider, bytes32 indexed opId, uint256 amount, uint256 releaseAt);
    event StakeWithdrawn(address indexed provider, bytes32 indexed opId, uint256 amount);
    event StakeSlashed(address indexed provider, bytes32 indexed opId, bytes32 indexed jobId, address to, uint256 amount);

    constructor(address initialOwner, IGPUToken token_, address platform_) Owned(initialOwner) {
        require(platform_ != address(0), "ZeroAddress");
        token = token_;
        platform = platform_;
        emit PlatformSet(platform_);
    }

    modifier onlyMarketplace() {
        require(msg.sender == marketplace, "NotMarketplace");
        _;
    }

    function setMarketplace(address marketplace_) external onlyOwner {
        require(marketplace == address(0), "MarketplaceSet");
        require(marketplace_ != address(0), "ZeroAddress");
        marketplace = marketplace_;
        emit MarketplaceSet(marketplace_);
    }

    function getEscrow(bytes32 jobId) external view returns (EscrowRecord memory) {
        return _escrows[jobId];
    }

    function lockedFor(bytes32 jobId) external view returns (uint256) {
        return _escrows[jobId].remaining;
    }

    function calculatePlatformFee(uint256 amount) public pure returns (uint256) {
        return amount * PLATFORM_FEE_BPS / BPS;
    }

    /// @notice Record tokens the marketplace has already moved into this contract.
    function lockFunds(bytes32 jobId, uint256 amount, address user, address provider)
        external onlyMarketplace nonReentrant
    {
        EscrowRecord storage e = _escrows[jobId];
        require(e.state == EscrowState.None, "EscrowExists");
        require(user != address(0) && provider != address(0), "ZeroAddress");
        require(token.balanceOf(address(this)) >= totalLocked + totalStaked + amount, "FundsNotReceived");
        e.user = user;
        e.provider = provider;
        e.lockedAmount = amount;
        e.remaining = amount;
        e.state = EscrowState.Locked;
        totalLocked += amount;
        emit FundsLocked(jobId, user, provider, amount);
    }

    /// @notice Pay `amount` of what is locked now; the rest stays locked. Keyed by opId.
    function partialRelease(bytes32 jobId, uint256 amount, bytes32 opId) external onlyMarketplace nonReentrant {
        EscrowRecord storage e = _escrows[jobId];
        require(e.state == EscrowState.Locked, "EscrowNotLocked");
        require(amount > 0, "ZeroAmount");
        uint256 seen = partialOps[jobId][opId].amount;
        if (seen != 0) {
            require(seen == amount, "IdempotencyConflict");
            return;
        }
        require(amount <= e.remaining, "ExceedsLocked");
        (uint256 toProvider, uint256 toPlatform) = _debit(e, amount);
        partialOps[jobId][opId] = PartialOp(amount, e.remaining);
        _payOut(jobId, e.provider, toProvider, toPlatform);
        emit PartialReleased(jobId, opId, toProvider, toPlatform);
    }

    /// @notice Settle: `actualCost` is the job's whole cost; what partial releases paid counts
    /// towards it, the rest of it is paid now and what is left locked is refunded.
    function releaseFunds(bytes32 jobId, uint256 actualCost) external onlyMarketplace nonReentrant {
        EscrowRecord storage e = _escrows[jobId];
        require(e.state == EscrowState.Locked, "EscrowNotLocked");
        uint256 paid = e.paidProvider + e.paidPlatform;
        require(actualCost >= paid && actualCost - paid <= e.remaining, "ExceedsLocked");
        _settle(jobId, e, actualCost - paid, EscrowState.Released, 1, actualCost);
    }

    /// @notice Settle: everything still locked goes back to the user.
    function refund(bytes32 jobId) external onlyMarketplace nonReentrant {
        EscrowRecord storage e = _escrows[jobId];
        require(e.state == EscrowState.Locked, "EscrowNotLocked");
        _settle(jobId, e, 0, EscrowState.Refunded, 2, 0);
    }

    /// @notice Settle a dispute: providerBps/10000 of what is locked is paid (98/2), the rest refunded.
    function split(bytes32 jobId, uint256 providerBps) external onlyMarketplace nonReentrant {
        EscrowRecord storage e = _escrows[jobId];
        require(e.state == EscrowState.Locked, "EscrowNotLocked");
        require(providerBps <= BPS, "BadBps");
        uint256 pay = e.remaining * providerBps / BPS;
        bool paidNothing = pay == 0 && e.paidProvider + e.paidPlatform == 0;
        _settle(jobId, e, pay, paidNothing ? EscrowState.Refunded : EscrowState.Released, 3, providerBps);
    }

    // ---- stake ---------------------------------------------------------------------------

    function stakeOf(address provider) external view returns (StakeRecord memory) {
        return _stakes[provider];
    }

    function bondedStake(address provider) external view returns (uint256) {
        return _stakes[provider].bonded;
    }

    function slashRecorded(bytes32 opId) external view returns (bool) {
        return slashOps[opId].terms != bytes32(0);
    }

    /// @notice Record a stake the marketplace has already moved into this contract.
    function addStake(address provider, uint256 amount, bytes32 opId) external onlyMarketplace nonReentrant {
        require(amount > 0, "ZeroAmount");
        require(_newStakeOp(provider, opId, OP_STAKE, amount), "StakeOpReplayed");
        require(token.balanceOf(address(this)) >= totalLocked + totalStaked + amount, "FundsNotReceived");
        _stakes[provider].bonded += amount;
        totalStaked += amount;
        emit Staked(provider, opId, amount);
    }

    /// @notice Start unbonding `amount`: it stops counting as bonded now, stays slashable, and
    /// can be withdrawn UNBONDING_PERIOD later (a new request restarts the wait for the whole sum).
    function requestUnstake(address provider, uint256 amount, bytes32 opId) external onlyMarketplace nonReentrant {
        StakeRecord storage s = _stakes[provider];
        if (!_newStakeOp(provider, opId, OP_UNSTAKE, amount)) return;
        require(amount > 0, "ZeroAmount");
        require(amount <= s.bonded, "ExceedsStake");
        s.bonded -= amount;
        s.unbonding += amount;
        s.releaseAt = block.timestamp + UNBONDING_PERIOD;
        emit UnstakeRequested(provider, opId, amount, s.releaseAt);
    }

    /// @notice Pay out everything that has finished unbonding.
    function withdrawStake(address provider, bytes32 opId) external onlyMarketplace nonReentrant {
        StakeOp storage op = stakeOps[provider][opId];
        if (op.kind != 0) {
            require(op.kind == OP_WITHDRAW, "IdempotencyConflict");
            return;
        }
        StakeRecord storage s = _stakes[provider];
        uint256 amount = s.unbonding;
        require(amount > 0, "NothingUnbonding");
        require(block.timestamp >= s.releaseAt, "StakeUnbonding");
        s.unbonding = 0;
        s.releaseAt = 0;
        totalStaked -= amount;
        op.kind = OP_WITHDRAW;
        op.amount = amount;
        require(token.transfer(provider, amount), "TransferFailed");
        emit StakeWithdrawn(provider, opId, amount);
    }

    /// @notice Take up to `amount` of the provider's stake (bonded first, then unbonding). With a
    /// jobId (one of this provider's escrows) it goes to that job's user, the harmed renter;
    /// without (bytes32(0)), to the platform treasury. Keyed by opId: a replay takes nothing more.
    function slash(address provider, uint256 amount, bytes32 jobId, bytes32 opId)
        external onlyMarketplace nonReentrant returns (uint256 taken, address to)
    {
        require(amount > 0, "ZeroAmount");
        SlashOp storage op = slashOps[opId];
        bytes32 terms = keccak256(abi.encode(provider, amount, jobId));
        if (op.terms != bytes32(0)) {
            require(op.terms == terms, "IdempotencyConflict");
            return (op.amount, op.to);
        }
        to = platform;
        if (jobId != bytes32(0)) {
            EscrowRecord storage e = _escrows[jobId];
            require(e.state != EscrowState.None && e.provider == provider, "NotProvidersJob");
            to = e.user;
        }
        StakeRecord storage s = _stakes[provider];
        uint256 fromBonded = amount < s.bonded ? amount : s.bonded;
        uint256 fromUnbonding = amount - fromBonded;
        if (fromUnbonding > s.unbonding) fromUnbonding = s.unbonding;
        s.bonded -= fromBonded;
        s.unbonding -= fromUnbonding;
        if (s.unbonding == 0) s.releaseAt = 0;
        taken = fromBonded + fromUnbonding;
        totalStaked -= taken;
        op.terms = terms;
        op.amount = taken;
        op.to = to;
        if (taken > 0) require(token.transfer(to, taken), "TransferFailed");
        emit StakeSlashed(provider, opId, jobId, to, taken);
    }

    // ---- internals -----------------------------------------------------------------------

    /// @dev Record (provider, opId) as `kind` of `amount`; false when it is a replay of just that.
    function _newStakeOp(address provider, bytes32 opId, uint8 kind, uint256 amount) internal returns (bool) {
        StakeOp storage op = stakeOps[provider][opId];
        if (op.kind != 0) {
            require(op.kind == kind && op.amount == amount, "IdempotencyConflict");
            return false;
        }
        op.kind = kind;
        op.amount = amount;
        return true;
    }

    function _settle(
        bytes32 jobId,
        EscrowRecord storage e,
        uint256 pay,
        EscrowState final_,
        uint8 kind,
        uint256 param
    ) internal {
        // Effects: the record is final before any token moves.
        (uint256 toProvider, uint256 toPlatform) = _debit(e, pay);
        uint256 back = e.remaining;
        e.remaining = 0;
        e.refunded += back;
        e.settleProvider = toProvider;
        e.settlePlatform = toPlatform;
        e.settleRefund = back;
        e.state = final_;
        e.settledBy = kind;
        e.settleParam = param;
        totalLocked -= back;
        // Interactions (a refund reads no provider: one cold slot less).
        if (toProvider + toPlatform > 0) _payOut(jobId, e.provider, toProvider, toPlatform);
        if (back > 0) {
            require(token.transfer(e.user, back), "TransferFailed");
            emit Refunded(jobId, e.user, back);
        }
        emit EscrowSettled(jobId, uint8(final_), toProvider, toPlatform, back);
    }

    /// @dev Effects of paying `amount` of an escrow (98/2); moves no token.
    function _debit(EscrowRecord storage e, uint256 amount)
        internal returns (uint256 toProvider, uint256 toPlatform)
    {
        if (amount == 0) return (0, 0);
        toPlatform = calculatePlatformFee(amount);
        toProvider = amount - toPlatform;
        e.remaining -= amount;
        e.paidProvider += toProvider;
        e.paidPlatform += toPlatform;
        totalLocked -= amount;
    }

    function _payOut(bytes32 jobId, address provider, uint256 toProvider, uint256 toPlatform) internal {
        if (toProvider + toPlatform == 0) return;
        require(token.transfer(provider, toProvider), "TransferFailed");
        if (toPlatform > 0) require(token.transfer(platform, toPlatform), "TransferFailed");
        emit FundsReleased(jobId, provider, toProvider, toPlatform);
    }
}
