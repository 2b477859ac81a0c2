// SPDX-License-Identifier: MIT
pragma solidity 0.8.20;

import "./Guards.sol";
import "./GPUToken.sol";

/// @notice Holds each job's maximum cost and pays it out: 98% provider / 2% platform (the fee
/// floored, the provider gets the exact rest), the remainder back to the user. One record per
/// jobId; only the marketplace moves money. Same arithmetic as hcp.marketplace.escrow_backend.
contract PaymentEscrow is Owned, ReentrancyGuard {
    uint256 public constant PLATFORM_FEE_BPS = 200;
    uint256 public constant BPS = 10000;

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
    address public platform;
    address public marketplace;
    uint256 public totalLocked;

    mapping(bytes32 => EscrowRecord) private _escrows;
    struct PartialOp {
        uint256 amount;
        uint256 remainingAfter;
    }

    mapping(bytes32 => mapping(bytes32 => PartialOp)) public partialOps; // jobId => opId => what it did

    event MarketplaceSet(address marketplace);
    event PlatformSet(address platform);
    event FundsLocked(bytes32 indexed jobId, address indexed user, address indexed provider, uint256 amount);
    event FundsReleased(bytes32 indexed jobId, address indexed provider, uint256 providerAmount, uint256 platformFee);
    event PartialReleased(bytes32 indexed jobId, bytes32 indexed opId, uint256 providerAmount, uint256 platformFee);
    event Refunded(bytes32 indexed jobId, address indexed user, uint256 amount);
    event EscrowSettled(bytes32 indexed jobId, uint8 state, uint256 providerAmount, uint256 platformFee, uint256 refunded);

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
        require(token.balanceOf(address(this)) >= totalLocked + amount, "FundsNotReceived");
        e.user = user;
        e.provider = provider;
        e.lockedAmount = amount;
        e.remaining = amount;
        e.state = EscrowState.Locked;
        totalLocked += amount;
        emit FundsLocked(jobId, user, provider, amount);
    }

    /// @notice Pay `amount` of what is locked now; the rest stays locked. Keyed by opId.
    function partialRelease(bytes32 jobId, uint256 amount, bytes32 opId)
        external onlyMarketplace nonReentrant returns (uint256 toProvider, uint256 toPlatform)
    {
        EscrowRecord storage e = _escrows[jobId];
        require(e.state == EscrowState.Locked, "EscrowNotLocked");
        require(amount > 0, "ZeroAmount");
        uint256 seen = partialOps[jobId][opId].amount;
        if (seen != 0) {
            require(seen == amount, "IdempotencyConflict");
            return (0, 0);
        }
        require(amount <= e.remaining, "ExceedsLocked");
        (toProvider, toPlatform) = _pay(jobId, e, amount);
        partialOps[jobId][opId] = PartialOp(amount, e.remaining);
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

    function _settle(
        bytes32 jobId,
        EscrowRecord storage e,
        uint256 pay,
        EscrowState final_,
        uint8 kind,
        uint256 param
    ) internal {
        (uint256 toProvider, uint256 toPlatform) = _pay(jobId, e, pay);
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
        if (back > 0) {
            require(token.transfer(e.user, back), "TransferFailed");
            emit Refunded(jobId, e.user, back);
        }
        emit EscrowSettled(jobId, uint8(final_), toProvider, toPlatform, back);
    }

    function _pay(bytes32 jobId, EscrowRecord storage e, uint256 amount)
        internal returns (uint256 toProvider, uint256 toPlatform)
    {
        if (amount == 0) return (0, 0);
        toPlatform = calculatePlatformFee(amount);
        toProvider = amount - toPlatform;
        e.remaining -= amount;
        e.paidProvider += toProvider;
        e.paidPlatform += toPlatform;
        totalLocked -= amount;
        require(token.transfer(e.provider, toProvider), "TransferFailed");
        if (toPlatform > 0) require(token.transfer(platform, toPlatform), "TransferFailed");
        emit FundsReleased(jobId, e.provider, toProvider, toPlatform);
    }
}
