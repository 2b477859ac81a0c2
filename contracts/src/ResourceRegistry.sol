// SPDX-License-Identifier: MIT
pragma solidity 0.8.20;

import "./Guards.sol";

/// @notice GPU resources offered by providers: pricing and availability set by the provider,
/// uptime by the marketplace, reputation mirrored from the ReputationSystem once per provider.
contract ResourceRegistry is Owned {
    /// @dev What getResource returns; `reputation` is the provider's mirrored score.
    struct GPUResource {
        address provider;
        string gpuModel;
        uint16 vcpu;
        uint32 memoryGB;
        uint32 storageGB;
        uint256 pricePerHour; // smallest token units per hour
        bool available;
        uint256 totalUptime;  // seconds
        uint256 reputation;   // 0-1000
        uint256 registeredAt;
    }

    struct Resource {
        address provider;
        string gpuModel;
        uint16 vcpu;
        uint32 memoryGB;
        uint32 storageGB;
        uint256 pricePerHour;
        bool available;
        uint256 totalUptime;
        uint256 registeredAt;
    }

    mapping(bytes32 => Resource) private _resources;
    // One score per provider, not per resource: settling a job (which ends in updateReputation)
    // must cost the same gas whether the provider lists one resource or ten thousand. A loop over
    // them could pass the block gas limit and leave a disputed job's escrow with no way out.
    mapping(address => uint256) public providerReputation;
    mapping(address => bytes32[]) private _providerResources;
    bytes32[] public allResourceIds;
    mapping(address => uint256) public registrationNonce;

    address public marketplace;
    address public reputationSystem;

    event ResourceRegistered(bytes32 indexed resourceId, address indexed provider, string gpuModel, uint256 pricePerHour);
    event AvailabilityUpdated(bytes32 indexed resourceId, bool available);
    event PricingUpdated(bytes32 indexed resourceId, uint256 newPrice);
    event UptimeUpdated(bytes32 indexed resourceId, uint256 totalUptime);
    event ProviderReputationUpdated(address indexed provider, uint256 reputation);
    event WiringSet(address marketplace, address reputationSystem);

    constructor(address initialOwner) Owned(initialOwner) {}

    function setWiring(address marketplace_, address reputation_) external onlyOwner {
        require(marketplace == address(0), "WiringSet");
        require(marketplace_ != address(0) && reputation_ != address(0), "ZeroAddress");
        marketplace = marketplace_;
        reputationSystem = reputation_;
        emit WiringSet(marketplace_, reputation_);
    }

    modifier onlyResourceProvider(bytes32 resourceId) {
        require(_resources[resourceId].provider != address(0), "UnknownResource");
        require(_resources[resourceId].provider == msg.sender, "NotResourceProvider");
        _;
    }

    /// @notice resourceId = keccak256(provider, nonce): deterministic, so a client can compute it.
    function registerResource(
        string calldata gpuModel,
        uint16 vcpu,
        uint32 memoryGB,
        uint32 storageGB,
        uint256 pricePerHour
    ) external returns (bytes32 resourceId) {
        require(bytes(gpuModel).length > 0 && bytes(gpuModel).length <= 64, "BadModel");
        require(pricePerHour > 0, "ZeroPrice");
        resourceId = keccak256(abi.encode(msg.sender, registrationNonce[msg.sender]));
        registrationNonce[msg.sender] += 1;
        Resource storage r = _resources[resourceId];
        r.provider = msg.sender;
        r.gpuModel = gpuModel;
        r.vcpu = vcpu;
        r.memoryGB = memoryGB;
        r.storageGB = storageGB;
        r.pricePerHour = pricePerHour;
        r.available = true;
        r.registeredAt = block.timestamp;
        _providerResources[msg.sender].push(resourceId);
        allResourceIds.push(resourceId);
        emit ResourceRegistered(resourceId, msg.sender, gpuModel, pricePerHour);
        emit AvailabilityUpdated(resourceId, true);
    }

    function updateAvailability(bytes32 resourceId, bool available) external onlyResourceProvider(resourceId) {
        _resources[resourceId].available = available;
        emit AvailabilityUpdated(resourceId, available);
    }

    function updatePricing(bytes32 resourceId, uint256 newPrice) external onlyResourceProvider(resourceId) {
        require(newPrice > 0, "ZeroPrice");
        _resources[resourceId].pricePerHour = newPrice;
        emit PricingUpdated(resourceId, newPrice);
    }

    function updateUptime(bytes32 resourceId, uint256 additionalSeconds) external {
        require(msg.sender == marketplace, "NotMarketplace");
        require(_resources[resourceId].provider != address(0), "UnknownResource");
        _resources[resourceId].totalUptime += additionalSeconds;
        emit UptimeUpdated(resourceId, _resources[resourceId].totalUptime);
    }

    /// @notice Mirror a provider's score (read back on each of its resources). O(1) in gas.
    function updateReputation(address provider, uint256 newReputation) external {
        require(msg.sender == reputationSystem, "NotReputationSystem");
        require(newReputation <= 1000, "BadScore");
        providerReputation[provider] = newReputation;
        emit ProviderReputationUpdated(provider, newReputation);
    }

    function getResource(bytes32 resourceId) external view returns (GPUResource memory g) {
        Resource storage r = _resources[resourceId];
        g = GPUResource(r.provider, r.gpuModel, r.vcpu, r.memoryGB, r.storageGB, r.pricePerHour,
                        r.available, r.totalUptime, providerReputation[r.provider], r.registeredAt);
    }

    function getProviderResources(address provider) external view returns (bytes32[] memory) {
        return _providerResources[provider];
    }

    function resourceCount() external view returns (uint256) {
        return allResourceIds.length;
    }
}
