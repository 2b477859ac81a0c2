// SPDX-License-Identifier: MIT
pragma solidity 0.8.20;

import "./Guards.sol";
import "./GPUToken.sol";
import "./PaymentEscrow.sol";
import "./ResourceRegistry.sol";
import "./ReputationSystem.sol";

/// @notice Jobs on registered GPUs: Created -> Accepted -> Running -> Completed (or stopped by
/// either party), Created|Accepted -> Cancelled,
/// Accepted|Running -> Disputed -> (oracle) Completed. The only contract that moves escrow.
/// Job ids are chosen by the client (e.g. keccak of an off-chain id) so a retried createJob
/// after a crash finds its job instead of locking funds twice.
/// "Direct" escrows carry an off-chain priced job (hcp's EscrowBackend): the renter locks, and
/// only an oracle settles them.
/// Providers stake through here (the escrow holds the tokens); a provider whose bonded stake is
/// below `minStake` takes no new job, and an oracle may slash a stake (see PaymentEscrow.slash).
contract Marketplace is Owned, ReentrancyGuard {
    enum JobStatus { None, Created, Accepted, Running, Completed, Disputed, Cancelled }
    enum Outcome { None, ProviderFault, UserFault, Inconclusive }

    uint256 public constant SECONDS_PER_HOUR = 3600;
    uint256 public constant DISPUTE_LOST_PENALTY = 50;

    struct Job {
        bytes32 jobId;
        address user;
        address provider;
        bytes32 resourceId;
        string imageCID;
        uint256 estimatedDuration;
        uint256 pricePerHour;
        uint256 maxCost;
        uint256 startTime;
        uint256 endTime;
        JobStatus status;
        uint256 finalCost;
        Outcome outcome;
    }

    GPUToken public immutable token;
    ResourceRegistry public immutable registry;
    PaymentEscrow public immutable escrow;
    ReputationSystem public immutable reputation;

    mapping(bytes32 => Job) private _jobs;
    mapping(address => bytes32[]) private _userJobs;
    mapping(address => bytes32[]) private _providerJobs;
    mapping(bytes32 => bool) public isDirectEscrow;
    mapping(address => bool) public isOracle;
    uint256 public minStake;

    event OracleSet(address indexed oracle, bool allowed);
    event JobCreated(bytes32 indexed jobId, address indexed user, bytes32 indexed resourceId, address provider, string imageCID, uint256 maxCost);
    event JobAccepted(bytes32 indexed jobId, address indexed provider);
    event JobStarted(bytes32 indexed jobId, uint256 startTime);
    event JobCompleted(bytes32 indexed jobId, uint256 finalCost, uint256 duration);
    event JobCancelled(bytes32 indexed jobId, address indexed by);
    event JobStopped(bytes32 indexed jobId, address indexed by);
    event JobDisputed(bytes32 indexed jobId, address indexed initiator, string reason);
    event DisputeResolved(bytes32 indexed jobId, uint8 outcome, uint256 paid, uint256 refunded);
    event EscrowOpened(bytes32 indexed jobId, address indexed user, address indexed provider, uint256 amount);
    event EscrowClosed(bytes32 indexed jobId, uint256 paid, uint256 refunded);
    event MinStakeSet(uint256 amount);
    event ProviderSlashed(address indexed provider, bytes32 indexed opId, address to, uint256 amount, string reason);

    constructor(
        address initialOwner,
        GPUToken token_,
        ResourceRegistry registry_,
        PaymentEscrow escrow_,
        ReputationSystem reputation_
    ) Owned(initialOwner) {
        token = token_;
        registry = registry_;
        escrow = escrow_;
        reputation = reputation_;
    }

    modifier onlyOracle() {
        require(isOracle[msg.sender], "NotOracle");
        _;
    }

    function setOracle(address oracle, bool allowed) external onlyOwner {
        isOracle[oracle] = allowed;
        emit OracleSet(oracle, allowed);
    }

    function setMinStake(uint256 amount) external onlyOwner {
        minStake = amount;
        emit MinStakeSet(amount);
    }

    function costFor(uint256 pricePerHour, uint256 durationSeconds) public pure returns (uint256) {
        return pricePerHour * durationSeconds / SECONDS_PER_HOUR;
    }

    // ---- seed lifecycle ------------------------------------------------------------------

    function createJob(bytes32 jobId, bytes32 resourceId, string calldata imageCID, uint256 estimatedDuration)
        external nonReentrant
    {
        require(_jobs[jobId].status == JobStatus.None && !isDirectEscrow[jobId], "JobExists");
        require(bytes(imageCID).length > 0 && bytes(imageCID).length <= 128, "BadImageCID");
        require(estimatedDuration > 0, "ZeroDuration");
        ResourceRegistry.GPUResource memory r = registry.getResource(resourceId);
        require(r.provider != address(0), "UnknownResource");
        require(r.available, "ResourceUnavailable");
        require(r.provider != msg.sender, "SelfRental");
        require(escrow.bondedStake(r.provider) >= minStake, "InsufficientStake");
        uint256 maxCost = costFor(r.pricePerHour, estimatedDuration);
        require(maxCost > 0, "ZeroCost");

        Job storage j = _jobs[jobId];
        j.jobId = jobId;
        j.user = msg.sender;
        j.provider = r.provider;
        j.resourceId = resourceId;
        j.imageCID = imageCID;
        j.estimatedDuration = estimatedDuration;
        j.pricePerHour = r.pricePerHour;
        j.maxCost = maxCost;
        j.status = JobStatus.Created;
        _userJobs[msg.sender].push(jobId);
        _providerJobs[r.provider].push(jobId);

        _lock(jobId, msg.sender, r.provider, maxCost);
        emit JobCreated(jobId, msg.sender, resourceId, r.provider, imageCID, maxCost);
    }

    /// @notice Before the billing clock starts (created or accepted) either party may cancel;
    /// everything locked goes back to the renter (the SQL marketplace's rule too).
    function cancelJob(bytes32 jobId) external nonReentrant {
        Job storage j = _jobs[jobId];
        require(j.status == JobStatus.Created || j.status == JobStatus.Accepted, "BadJobState");
        require(msg.sender == j.user || msg.sender == j.provider, "NotJobParty");
        j.status = JobStatus.Cancelled;
        escrow.refund(jobId);
        emit JobCancelled(jobId, msg.sender);
    }

    function acceptJob(bytes32 jobId) external {
        Job storage j = _jobs[jobId];
        require(j.status == JobStatus.Created, "BadJobState");
        require(msg.sender == j.provider, "NotProvider");
        j.status = JobStatus.Accepted;
        emit JobAccepted(jobId, msg.sender);
    }

    function startJob(bytes32 jobId) external {
        Job storage j = _jobs[jobId];
        require(j.status == JobStatus.Accepted, "BadJobState");
        require(msg.sender == j.provider, "NotProvider");
        j.status = JobStatus.Running;
        j.startTime = block.timestamp;
        emit JobStarted(jobId, block.timestamp);
    }

    /// @notice Bill price x min(run time, estimate, usageSeconds) / 3600 (floor) as the job's
    /// whole cost: the provider may bill less than the clock, never more (pass type(uint256).max
    /// for no report); partial releases already paid count towards it; the rest is refunded.
    function completeJob(bytes32 jobId, uint256 usageSeconds) external nonReentrant {
        Job storage j = _jobs[jobId];
        require(j.status == JobStatus.Running, "BadJobState");
        require(msg.sender == j.provider, "NotProvider");
        _settleRun(jobId, j, usageSeconds);
    }

    /// @notice Either party ends a running rental now: the time used so far is paid, exactly as
    /// a completion at this moment, and the rest refunded.
    function stopJob(bytes32 jobId) external nonReentrant {
        Job storage j = _jobs[jobId];
        require(j.status == JobStatus.Running, "BadJobState");
        require(msg.sender == j.user || msg.sender == j.provider, "NotJobParty");
        emit JobStopped(jobId, msg.sender);
        _settleRun(jobId, j, type(uint256).max);
    }

    function _settleRun(bytes32 jobId, Job storage j, uint256 usageSeconds) internal {
        uint256 duration = block.timestamp - j.startTime;
        if (duration > j.estimatedDuration) duration = j.estimatedDuration;
        if (duration > usageSeconds) duration = usageSeconds;
        uint256 cost = costFor(j.pricePerHour, duration);
        PaymentEscrow.EscrowRecord memory e = escrow.getEscrow(jobId);
        uint256 paid = e.paidProvider + e.paidPlatform;
        // Partial releases already paid may exceed the billed time; never claw back, never over-pay.
        if (cost < paid) cost = paid;
        if (cost > paid + e.remaining) cost = paid + e.remaining;
        j.status = JobStatus.Completed;
        j.endTime = block.timestamp;
        j.finalCost = cost;
        escrow.releaseFunds(jobId, cost);
        registry.updateUptime(j.resourceId, duration);
        reputation.recordJob(j.provider, true, false);
        emit JobCompleted(jobId, j.finalCost, duration);
    }

    function disputeJob(bytes32 jobId, string calldata reason) external {
        Job storage j = _jobs[jobId];
        require(j.status == JobStatus.Accepted || j.status == JobStatus.Running, "BadJobState");
        require(msg.sender == j.user || msg.sender == j.provider, "NotJobParty");
        require(bytes(reason).length <= 256, "ReasonTooLong");
        j.status = JobStatus.Disputed;
        if (j.startTime != 0) j.endTime = block.timestamp;
        emit JobDisputed(jobId, msg.sender, reason);
    }

    /// @notice Provider fault: refund + penalty; user fault: provider paid what is locked;
    /// inconclusive: 50/50 split of what is locked.
    function resolveDispute(bytes32 jobId, Outcome outcome) external onlyOracle nonReentrant {
        Job storage j = _jobs[jobId];
        require(j.status == JobStatus.Disputed, "BadJobState");
        require(outcome != Outcome.None, "BadOutcome");
        uint256 bps = outcome == Outcome.ProviderFault ? 0 : (outcome == Outcome.UserFault ? 10000 : 5000);
        j.status = JobStatus.Completed;
        j.outcome = outcome;
        // The job's record is final before the escrow is called (what split will pay: the
        // same floor as PaymentEscrow.split).
        PaymentEscrow.EscrowRecord memory e = escrow.getEscrow(jobId);
        j.finalCost = e.paidProvider + e.paidPlatform + e.remaining * bps / 10000;
        escrow.split(jobId, bps);
        e = escrow.getEscrow(jobId);
        // A dispute decided as the renter's fault is a completed job, not a dispute against the
        // provider (the SQL marketplace counts the same way).
        reputation.recordJob(j.provider, outcome == Outcome.UserFault, outcome != Outcome.UserFault);
        if (outcome == Outcome.ProviderFault) {
            reputation.applyPenalty(j.provider, DISPUTE_LOST_PENALTY, "dispute_lost");
        }
        emit DisputeResolved(jobId, uint8(outcome), e.settleProvider + e.settlePlatform, e.settleRefund);
        emit JobCompleted(jobId, j.finalCost, j.endTime > j.startTime && j.startTime != 0 ? j.endTime - j.startTime : 0);
    }

    // ---- direct escrows (off-chain priced jobs) -----------------------------------------

    function openEscrow(bytes32 jobId, address provider, uint256 amount) external nonReentrant {
        require(_jobs[jobId].status == JobStatus.None && !isDirectEscrow[jobId], "JobExists");
        require(provider != address(0), "ZeroAddress");
        // The escrow cannot pay itself (the token refuses it): such an escrow could only refund.
        require(provider != address(escrow) && provider != address(this), "BadProvider");
        isDirectEscrow[jobId] = true;
        _lock(jobId, msg.sender, provider, amount);
        emit EscrowOpened(jobId, msg.sender, provider, amount);
    }

    /// @notice `actualCost` is the whole cost, partial releases included (as PaymentEscrow.releaseFunds).
    function settleEscrow(bytes32 jobId, uint256 actualCost) external onlyOracle nonReentrant {
        require(isDirectEscrow[jobId], "NotDirectEscrow");
        escrow.releaseFunds(jobId, actualCost);
        _closed(jobId);
    }

    function refundEscrow(bytes32 jobId) external onlyOracle nonReentrant {
        require(isDirectEscrow[jobId], "NotDirectEscrow");
        escrow.refund(jobId);
        _closed(jobId);
    }

    function splitEscrow(bytes32 jobId, uint256 providerBps) external onlyOracle nonReentrant {
        require(isDirectEscrow[jobId], "NotDirectEscrow");
        escrow.split(jobId, providerBps);
        _closed(jobId);
    }

    /// @notice Pay part of a running job (or open direct escrow) now; keyed by opId.
    function partialRelease(bytes32 jobId, uint256 amount, bytes32 opId) external onlyOracle nonReentrant {
        require(isDirectEscrow[jobId] || _jobs[jobId].status == JobStatus.Running, "BadJobState");
        escrow.partialRelease(jobId, amount, opId);
    }

    // ---- stake ---------------------------------------------------------------------------

    /// @notice Stake `amount` from the caller's balance (approve the marketplace first). Keyed by
    /// (caller, opId): a replay is a no-op.
    function stake(uint256 amount, bytes32 opId) external nonReentrant {
        (uint8 kind, uint256 seen) = escrow.stakeOps(msg.sender, opId);
        if (kind != 0) {
            require(kind == escrow.OP_STAKE() && seen == amount, "IdempotencyConflict");
            return;
        }
        require(amount > 0, "ZeroAmount");
        require(token.transferFrom(msg.sender, address(escrow), amount), "TransferFailed");
        escrow.addStake(msg.sender, amount, opId);
    }

    function requestUnstake(uint256 amount, bytes32 opId) external nonReentrant {
        escrow.requestUnstake(msg.sender, amount, opId);
    }

    function withdrawStake(bytes32 opId) external nonReentrant {
        escrow.withdrawStake(msg.sender, opId);
    }

    /// @notice Slash up to `amount` of a provider's stake: to the renter of `jobId` (one of the
    /// provider's jobs) or, with jobId 0, to the platform treasury.
    function slashStake(address provider, uint256 amount, bytes32 jobId, bytes32 opId, string calldata reason)
        external onlyOracle nonReentrant
    {
        require(bytes(reason).length <= 64, "ReasonTooLong");
        bool replay = escrow.slashRecorded(opId);
        (uint256 taken, address to) = escrow.slash(provider, amount, jobId, opId);
        if (!replay) emit ProviderSlashed(provider, opId, to, taken, reason);
    }

    // ---- views ---------------------------------------------------------------------------

    function getJob(bytes32 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    function getUserJobs(address user) external view returns (bytes32[] memory) {
        return _userJobs[user];
    }

    function getProviderJobs(address provider) external view returns (bytes32[] memory) {
        return _providerJobs[provider];
    }

    function _lock(bytes32 jobId, address user, address provider, uint256 amount) internal {
        require(amount > 0, "ZeroAmount");
        require(token.transferFrom(user, address(escrow), amount), "TransferFailed");
        escrow.lockFunds(jobId, amount, user, provider);
    }

    function _closed(bytes32 jobId) internal {
        PaymentEscrow.EscrowRecord memory e = escrow.getEscrow(jobId);
        emit EscrowClosed(jobId, e.paidProvider + e.paidPlatform, e.refunded);
    }
}
