// SPDX-License-Identifier: MIT
pragma solidity 0.8.20;

import "./Guards.sol";

/// @notice ERC-20 GPU token (18 decimals). Mints and operation-keyed transfers are idempotent:
/// an op id is recorded on chain, so a client retrying after a crash cannot move money twice.
/// Holders are enumerable so the supply invariant can be checked on chain alone.
contract GPUToken is Owned {
    string public constant name = "GPU Token";
    string public constant symbol = "GPU";
    uint8 public constant decimals = 18;

    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    mapping(address => bool) public isMinter;
    // opId => keccak256(to, amount): a replay is a no-op, a reuse with other terms reverts.
    mapping(bytes32 => bytes32) public mintOps;
    mapping(address => mapping(bytes32 => bytes32)) public transferOps;

    address[] private _holders;
    mapping(address => bool) public isHolder;
    // Off-chain account names of custodial addresses, so books can be read back from the chain.
    mapping(address => string) public accountLabel;

    // Tokens may enter the escrow contract only through the marketplace, so the escrow's
    // balance always equals what it has locked (no stray donations break the invariant).
    address public escrowAccount;
    address public escrowFeeder;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event MinterSet(address indexed minter, bool allowed);
    event Minted(bytes32 indexed opId, address indexed to, uint256 amount);
    event OpTransfer(bytes32 indexed opId, address indexed from, address indexed to, uint256 amount);
    event EscrowRouteSet(address escrowAccount, address escrowFeeder);
    event AccountLabelled(address indexed account, string label);

    constructor(address initialOwner) Owned(initialOwner) {}

    function setMinter(address minter, bool allowed) external onlyOwner {
        isMinter[minter] = allowed;
        emit MinterSet(minter, allowed);
    }

    function setEscrowRoute(address account, address feeder) external onlyOwner {
        require(escrowAccount == address(0), "EscrowRouteSet");
        require(account != address(0) && feeder != address(0), "ZeroAddress");
        escrowAccount = account;
        escrowFeeder = feeder;
        emit EscrowRouteSet(account, feeder);
    }

    function holderCount() external view returns (uint256) {
        return _holders.length;
    }

    function holders(uint256 start, uint256 count)
        external view returns (address[] memory page, string[] memory labels)
    {
        uint256 end = start + count;
        if (end > _holders.length) end = _holders.length;
        if (start >= end) return (new address[](0), new string[](0));
        page = new address[](end - start);
        labels = new string[](end - start);
        for (uint256 i = start; i < end; i++) {
            page[i - start] = _holders[i];
            labels[i - start] = accountLabel[_holders[i]];
        }
    }

    function setLabel(address account, string calldata label) external {
        require(isMinter[msg.sender], "NotMinter");
        require(bytes(label).length > 0 && bytes(label).length <= 128, "BadLabel");
        require(bytes(accountLabel[account]).length == 0, "Labelled");
        accountLabel[account] = label;
        emit AccountLabelled(account, label);
    }

    /// @notice Create tokens once per opId; a replay is a no-op returning false.
    function mint(address to, uint256 amount, bytes32 opId) external returns (bool) {
        require(isMinter[msg.sender], "NotMinter");
        require(to != address(0), "ZeroAddress");
        require(to != escrowAccount, "DirectEscrowTransfer");
        bytes32 terms = keccak256(abi.encode(to, amount));
        bytes32 seen = mintOps[opId];
        if (seen != bytes32(0)) {
            require(seen == terms, "IdempotencyConflict");
            return false;
        }
        mintOps[opId] = terms;
        totalSupply += amount;
        _credit(to, amount);
        emit Transfer(address(0), to, amount);
        emit Minted(opId, to, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    /// @notice A transfer recorded under (sender, opId); replaying it is a no-op returning false.
    function transferOp(address to, uint256 amount, bytes32 opId) external returns (bool) {
        bytes32 terms = keccak256(abi.encode(to, amount));
        bytes32 seen = transferOps[msg.sender][opId];
        if (seen != bytes32(0)) {
            require(seen == terms, "IdempotencyConflict");
            return false;
        }
        transferOps[msg.sender][opId] = terms;
        _transfer(msg.sender, to, amount);
        emit OpTransfer(opId, msg.sender, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        require(spender != address(0), "ZeroAddress");
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= amount, "InsufficientAllowance");
        if (allowed != type(uint256).max) {
            allowance[from][msg.sender] = allowed - amount;
            emit Approval(from, msg.sender, allowed - amount);
        }
        _transfer(from, to, amount);
        return true;
    }

    function _transfer(address from, address to, uint256 amount) internal {
        require(to != address(0), "ZeroAddress");
        if (to == escrowAccount) require(msg.sender == escrowFeeder, "DirectEscrowTransfer");
        uint256 bal = balanceOf[from];
        require(bal >= amount, "InsufficientBalance");
        unchecked {
            balanceOf[from] = bal - amount;
        }
        _credit(to, amount);
        emit Transfer(from, to, amount);
    }

    function _credit(address to, uint256 amount) internal {
        if (!isHolder[to]) {
            isHolder[to] = true;
            _holders.push(to);
        }
        balanceOf[to] += amount;
    }
}

interface IGPUToken {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
    function balanceOf(address account) external view returns (uint256);
}
