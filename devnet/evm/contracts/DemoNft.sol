// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @notice Minimal ERC-721 for the devnet: the owner mints with a per-token URI (e.g. a data: URI).
contract DemoNft {
    string public name;
    string public symbol;
    address public minter;
    mapping(uint256 => address) internal owners;
    mapping(address => uint256) public balanceOf;
    mapping(uint256 => string) internal uris;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);

    constructor(string memory name_, string memory symbol_) { name = name_; symbol = symbol_; minter = msg.sender; }

    function supportsInterface(bytes4 id) external pure returns (bool) {
        return id == 0x80ac58cd || id == 0x5b5e139f || id == 0x01ffc9a7;
    }

    function ownerOf(uint256 tokenId) external view returns (address) {
        address o = owners[tokenId];
        require(o != address(0), "no such token");
        return o;
    }

    function tokenURI(uint256 tokenId) external view returns (string memory) {
        require(owners[tokenId] != address(0), "no such token");
        return uris[tokenId];
    }

    function mint(address to, uint256 tokenId, string calldata uri) external {
        require(msg.sender == minter, "not minter");
        require(owners[tokenId] == address(0), "exists");
        owners[tokenId] = to;
        balanceOf[to] += 1;
        uris[tokenId] = uri;
        emit Transfer(address(0), to, tokenId);
    }

    function transferFrom(address from, address to, uint256 tokenId) external {
        require(owners[tokenId] == from && msg.sender == from, "not owner");
        owners[tokenId] = to;
        balanceOf[from] -= 1;
        balanceOf[to] += 1;
        emit Transfer(from, to, tokenId);
    }
}

/// @notice Minimal ERC-1155 for the devnet: uri(id) is a per-id URI when set, else the {id} template.
contract DemoMulti {
    string public name;
    string public symbol;
    address public minter;
    string internal baseUri;
    mapping(uint256 => string) internal idUris;
    mapping(uint256 => mapping(address => uint256)) internal balances;

    event TransferSingle(address indexed operator, address indexed from, address indexed to, uint256 id, uint256 value);
    event TransferBatch(address indexed operator, address indexed from, address indexed to, uint256[] ids, uint256[] values);
    event URI(string value, uint256 indexed id);

    constructor(string memory name_, string memory symbol_, string memory baseUri_) {
        name = name_; symbol = symbol_; baseUri = baseUri_; minter = msg.sender;
    }

    function supportsInterface(bytes4 id) external pure returns (bool) { return id == 0xd9b67a26 || id == 0x0e89341c || id == 0x01ffc9a7; }

    function balanceOf(address account, uint256 id) external view returns (uint256) { return balances[id][account]; }

    function uri(uint256 id) external view returns (string memory) {
        return bytes(idUris[id]).length > 0 ? idUris[id] : baseUri;
    }

    function setUri(uint256 id, string calldata value) external {
        require(msg.sender == minter, "not minter");
        idUris[id] = value;
        emit URI(value, id);
    }

    function mint(address to, uint256 id, uint256 amount) external {
        require(msg.sender == minter, "not minter");
        balances[id][to] += amount;
        emit TransferSingle(msg.sender, address(0), to, id, amount);
    }

    function mintBatch(address to, uint256[] calldata ids, uint256[] calldata amounts) external {
        require(msg.sender == minter && ids.length == amounts.length, "bad mint");
        for (uint256 i = 0; i < ids.length; i++) balances[ids[i]][to] += amounts[i];
        emit TransferBatch(msg.sender, address(0), to, ids, amounts);
    }

    function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes calldata) external {
        require(msg.sender == from, "not owner");
        balances[id][from] -= amount;
        balances[id][to] += amount;
        emit TransferSingle(msg.sender, from, to, id, amount);
    }
}
