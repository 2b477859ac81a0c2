// SPDX-License-Identifier: MIT
pragma solidity 0.8.20;

import "./Guards.sol";

interface IRegistryReputation {
    function updateReputation(address provider, uint256 newReputation) external;
}

/// @notice Provider score 0-1000 = uptime 0.4 + response 0.2 + completion 0.3 + (1 - dispute rate) 0.1,
/// plus rewards minus penalties, clamped. Rates are kept in permille so the arithmetic is integer.
contract ReputationSystem is Owned {
    struct ReputationScore {
        uint256 score;
        uint256 totalJobs;
        uint256 successfulJobs;
        uint256 disputes;
        uint256 lastUpdated;
    }

    struct Metrics {
        uint256 uptimePermille;   // measured uptime / promised uptime
        uint256 responsePermille; // 1 - avg response / max acceptable
        uint256 penalties;        // points
        uint256 rewards;          // points
        bool reported;
    }

    mapping(address => ReputationScore) private _scores;
    mapping(address => Metrics) private _metrics;
    mapping(address => bool) public isOracle;
    address public marketplace;
    IRegistryReputation public immutable registry;

    event OracleSet(address indexed oracle, bool allowed);
    event MarketplaceSet(address marketplace);
    event ReputationUpdated(address indexed provider, uint256 newScore);
    event MetricsReported(address indexed provider, uint256 uptimePermille, uint256 responsePermille);
    event JobRecorded(address indexed provider, bool success, bool disputed);
    event PenaltyApplied(address indexed provider, uint256 amount, string reason);
    event RewardIssued(address indexed provider, uint256 amount);

    constructor(address initialOwner, IRegistryReputation registry_) Owned(initialOwner) {
        registry = registry_;
    }

    modifier onlyMarketplace() {
        require(msg.sender == marketplace, "NotMarketplace");
        _;
    }

    modifier onlyOracleOrMarketplace() {
        require(isOracle[msg.sender] || msg.sender == marketplace, "NotOracle");
        _;
    }

    function setOracle(address oracle, bool allowed) external onlyOwner {
        isOracle[oracle] = allowed;
        emit OracleSet(oracle, allowed);
    }

    function setMarketplace(address marketplace_) external onlyOwner {
        require(marketplace == address(0), "MarketplaceSet");
        require(marketplace_ != address(0), "ZeroAddress");
        marketplace = marketplace_;
        emit MarketplaceSet(marketplace_);
    }

    function recordJob(address provider, bool success, bool disputed) external onlyMarketplace {
        ReputationScore storage s = _scores[provider];
        s.totalJobs += 1;
        if (success) s.successfulJobs += 1;
        if (disputed) s.disputes += 1;
        emit JobRecorded(provider, success, disputed);
        _recompute(provider);
    }

    function updateReputation(address provider, uint256 uptimePermille, uint256 responsePermille)
        external onlyOracleOrMarketplace
    {
        require(uptimePermille <= 1000 && responsePermille <= 1000, "BadMetric");
        Metrics storage m = _metrics[provider];
        m.uptimePermille = uptimePermille;
        m.responsePermille = responsePermille;
        m.reported = true;
        emit MetricsReported(provider, uptimePermille, responsePermille);
        _recompute(provider);
    }

    function applyPenalty(address provider, uint256 amount, string calldata reason) external onlyOracleOrMarketplace {
        _metrics[provider].penalties += amount;
        emit PenaltyApplied(provider, amount, reason);
        _recompute(provider);
    }

    function reward(address provider, uint256 bonus) external onlyOracleOrMarketplace {
        _metrics[provider].rewards += bonus;
        emit RewardIssued(provider, bonus);
        _recompute(provider);
    }

    function getReputation(address provider) external view returns (uint256) {
        return _scores[provider].score;
    }

    function getPenalty(address provider) external view returns (uint256) {
        return _metrics[provider].penalties;
    }

    function getScore(address provider) external view returns (ReputationScore memory) {
        return _scores[provider];
    }

    function getMetrics(address provider) external view returns (Metrics memory) {
        return _metrics[provider];
    }

    /// @notice Base score before rewards and penalties; an unmeasured provider counts as perfect.
    /// The job rates are floored to basis points and the measured terms (permille) scaled to
    /// them, so the score is the SQL marketplace's (hcp.marketplace.reputation) to the point.
    function calculateScore(
        uint256 uptimePermille,
        uint256 responsePermille,
        uint256 totalJobs,
        uint256 successfulJobs,
        uint256 disputes
    ) public pure returns (uint256) {
        // Each rate is floored to whole basis points before it is weighted: that is the unit the
        // score is defined in (docs/chain.md, Slither), so this division first is the rule.
        // slither-disable-next-line divide-before-multiply
        uint256 completion = totalJobs == 0 ? 10000 : successfulJobs * 10000 / totalJobs;
        uint256 disputeRate = totalJobs == 0 ? 0 : disputes * 10000 / totalJobs;
        if (disputeRate > 10000) disputeRate = 10000;
        return (uptimePermille * 40 + responsePermille * 20 + completion * 3 + (10000 - disputeRate)) / 100;
    }

    function _recompute(address provider) internal {
        ReputationScore storage s = _scores[provider];
        Metrics storage m = _metrics[provider];
        uint256 up = m.reported ? m.uptimePermille : 1000;
        uint256 resp = m.reported ? m.responsePermille : 1000;
        uint256 score = calculateScore(up, resp, s.totalJobs, s.successfulJobs, s.disputes) + m.rewards;
        score = score > m.penalties ? score - m.penalties : 0;
        if (score > 1000) score = 1000;
        s.score = score;
        s.lastUpdated = block.timestamp;
        emit ReputationUpdated(provider, score);
        registry.updateReputation(provider, score);
    }
}
