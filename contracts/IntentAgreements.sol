// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {WebAuthn} from "@openzeppelin/contracts/utils/cryptography/WebAuthn.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";
import {IEvidenceRegistry} from "./IEvidenceRegistry.sol";
import {IIntentAgreements} from "./IIntentAgreements.sol";

/**
 * @title IntentAgreements
 * @notice One registry for every intent agreement, keyed by `bytes32` (see {IIntentAgreements}).
 * @dev {Multicall-multicall} lets a relayer send several calls (offers, say) in one transaction:
 * each runs as if sent alone by the same `msg.sender`, and the whole transaction reverts when one
 * of them does. Nothing here is payable, so a batch cannot reuse `msg.value`.
 */
contract IntentAgreements is IIntentAgreements, EIP712, Nonces, Multicall {
    uint256 public constant MAX_MILESTONES = 8;
    /// @notice Damages may not exceed CAP_BPS / 10_000 of one month's salary (30%).
    uint256 public constant CAP_BPS = 3_000;

    /// @notice An arrival is accepted from this long before the start date (the start date's
    /// day, whatever the time of day and zone).
    uint64 public constant ARRIVAL_LEAD = 12 hours;
    /// @notice How long after an arrival the employer may dispute it; afterwards anyone may
    /// call {fulfilByArrival}.
    uint64 public constant DISPUTE_WINDOW = 7 days;
    /// @notice How long after a rebinding of the signer no commitment is accepted: long enough
    /// for the candidate, told on every channel, to object before anyone signs in their name.
    uint64 public constant REBIND_DELAY = 1 days;

    bytes32 public constant COMMITMENT_TYPEHASH = keccak256(
        "Commitment(bytes32 agreementId,address candidate,address employer,bytes32 termsHash,"
        "uint64 startDate,uint32 graceSeconds,uint8[] milestoneKinds,uint64[] milestoneDues,"
        "uint128 monthlySalary,uint128 liquidatedDamages,bytes32 ceremonyHash,uint256 nonce,"
        "uint64 deadline)"
    );
    bytes32 public constant ARRIVAL_TYPEHASH =
        keccak256("Arrival(bytes32 agreementId,uint256 nonce,uint64 deadline)");
    bytes32 public constant CANCELLATION_TYPEHASH =
        keccak256("Cancellation(bytes32 agreementId,uint256 nonce,uint64 deadline)");
    bytes32 public constant AMENDMENT_TYPEHASH = keccak256(
        "Amendment(bytes32 agreementId,bytes32 termsHash,uint64 startDate,uint64[] dues,"
        "uint256 nonce,uint64 deadline)"
    );

    /// @notice Where milestone evidence must be anchored.
    IEvidenceRegistry public immutable evidenceRegistry;

    /// @dev Terms and state packed into four slots (an agreement costs ~22k gas per slot).
    struct Record {
        address employer;
        uint64 startDate;
        uint32 graceSeconds;
        address candidate;
        uint64 offerExpiresAt;
        State state;
        uint8 milestoneCount;
        bytes32 termsHash;
        uint128 monthlySalary;
        uint128 liquidatedDamages;
    }

    mapping(bytes32 agreementId => Record) private _records;
    /// @dev Milestones packed two per slot: kind (8 bits) | due (40) | confirmedAt (40).
    /// uint40 seconds last until the year 36812.
    mapping(bytes32 agreementId => uint88[MAX_MILESTONES]) private _milestones;
    mapping(bytes32 agreementId => mapping(uint256 index => bytes32 leaf)) private _evidence;
    mapping(address employer => mapping(address operator => bool)) private _operators;

    /// @dev The candidate's arrival: when it was recorded (0: not) and whether it is disputed.
    struct Arrival {
        uint64 arrivedAt;
        bool disputed;
    }

    mapping(bytes32 agreementId => Arrival) private _arrivals;
    /// @dev The ceremony hash each commitment covered, and when a signer was last replaced.
    mapping(bytes32 agreementId => bytes32 ceremonyHash) private _ceremonies;
    mapping(bytes32 agreementId => uint64 timestamp) private _reboundAt;

    /// @param registry The EvidenceRegistry that anchors milestone evidence.
    constructor(IEvidenceRegistry registry) EIP712("OfferSeal IntentAgreements", "2") {
        evidenceRegistry = registry;
    }

    /// @inheritdoc IIntentAgreements
    function setOperator(address operator, bool approved) external {
        _operators[msg.sender][operator] = approved;
        emit OperatorSet(msg.sender, operator, approved);
    }

    /// @notice Whether `operator` may act for `employer`.
    /// @param employer The employer.
    /// @param operator The account.
    function isOperator(address employer, address operator) external view returns (bool) {
        return _operators[employer][operator];
    }

    /// @inheritdoc IIntentAgreements
    function offer(bytes32 salt, Terms calldata terms, Milestone[] calldata milestones)
        external
        returns (bytes32 agreementId)
    {
        agreementId = agreementIdOf(msg.sender, salt);
        Record storage record = _records[agreementId];
        if (record.state != State.None) revert AgreementExists(agreementId);
        _checkEmployer(agreementId, terms.employer);
        uint256 cap = (uint256(terms.monthlySalary) * CAP_BPS) / 10_000;
        if (uint256(terms.liquidatedDamages) * 10_000 > uint256(terms.monthlySalary) * CAP_BPS) {
            revert DamagesAboveCap(terms.liquidatedDamages, cap);
        }
        if (
            terms.offerExpiresAt <= block.timestamp
                || terms.offerExpiresAt > terms.startDate || terms.termsHash == bytes32(0)
        ) revert InvalidTerms(agreementId);
        if (milestones.length > MAX_MILESTONES) {
            revert TooManyMilestones(milestones.length, MAX_MILESTONES);
        }
        record.employer = terms.employer;
        record.startDate = terms.startDate;
        record.graceSeconds = terms.graceSeconds;
        record.candidate = terms.candidate;
        record.offerExpiresAt = terms.offerExpiresAt;
        record.state = State.Offered;
        record.milestoneCount = uint8(milestones.length);
        record.termsHash = terms.termsHash;
        record.monthlySalary = terms.monthlySalary;
        record.liquidatedDamages = terms.liquidatedDamages;
        uint88[MAX_MILESTONES] storage packed = _milestones[agreementId];
        for (uint256 i = 0; i < milestones.length; ++i) {
            Milestone calldata milestone = milestones[i];
            if (milestone.kind == 0 || milestone.confirmedAt != 0 || milestone.due > type(uint40).max) {
                revert InvalidMilestone(i);
            }
            packed[i] = _pack(milestone.kind, milestone.due, 0);
        }
        emit Offered(
            agreementId,
            terms.employer,
            terms.candidate,
            terms.termsHash,
            terms.startDate,
            terms.liquidatedDamages
        );
    }

    /// @inheritdoc IIntentAgreements
    function bindCandidate(bytes32 agreementId, address candidate) external {
        Record storage record = _records[agreementId];
        _requireState(agreementId, record.state, State.Offered);
        _checkEmployer(agreementId, record.employer);
        if (candidate == address(0)) revert InvalidTerms(agreementId);
        address previous = record.candidate;
        if (previous != address(0)) _reboundAt[agreementId] = uint64(block.timestamp);
        record.candidate = candidate;
        emit CandidateBound(agreementId, candidate, previous);
    }

    /// @notice The identity of a passkey: the address derived from its P-256 public key, as an
    /// Ethereum address is derived from a secp256k1 key (the last 20 bytes of a keccak256).
    /// No Ethereum key has it (that would need a keccak256 preimage).
    /// @param qx The public key's x coordinate.
    /// @param qy The public key's y coordinate.
    function passkeyAddress(bytes32 qx, bytes32 qy) public pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode(qx, qy)))));
    }

    /// @notice Whether `signature` over `digest` is `candidate`'s, as every candidate-signed call
    /// checks it: an ECDSA key's, an ERC-1271 wallet's, or the passkey's whose {passkeyAddress}
    /// is `candidate`.
    /// @param candidate The candidate's address.
    /// @param digest The EIP-712 digest.
    /// @param signature The signature.
    function isCandidateSignature(address candidate, bytes32 digest, bytes calldata signature)
        external
        view
        returns (bool)
    {
        return _isCandidateSignature(candidate, digest, signature);
    }

    /// @inheritdoc IIntentAgreements
    function commit(bytes32 agreementId, bytes32 ceremonyHash, bytes calldata signature)
        external
    {
        Record storage record = _records[agreementId];
        _requireState(agreementId, record.state, State.Offered);
        if (block.timestamp > record.offerExpiresAt) {
            revert OfferExpired(agreementId, record.offerExpiresAt);
        }
        address candidate = record.candidate;
        if (candidate == address(0)) revert CandidateNotBound(agreementId);
        if (ceremonyHash == bytes32(0)) revert MissingCeremony(agreementId);
        uint64 rebound = _reboundAt[agreementId];
        if (rebound != 0 && block.timestamp < rebound + REBIND_DELAY) {
            revert RebindingPending(agreementId, rebound + REBIND_DELAY);
        }
        uint256 nonce = _useNonce(candidate);
        bytes32 digest = _commitmentDigest(agreementId, record, ceremonyHash, nonce);
        if (!_isCandidateSignature(candidate, digest, signature)) {
            revert InvalidSignature(agreementId, candidate);
        }
        record.state = State.Committed;
        _ceremonies[agreementId] = ceremonyHash;
        emit Committed(agreementId, candidate, nonce, ceremonyHash);
    }

    /// @inheritdoc IIntentAgreements
    function ceremonyOf(bytes32 agreementId) external view returns (bytes32) {
        return _ceremonies[agreementId];
    }

    /// @inheritdoc IIntentAgreements
    function reboundAt(bytes32 agreementId) external view returns (uint64) {
        return _reboundAt[agreementId];
    }

    /// @inheritdoc IIntentAgreements
    function confirmMilestone(
        bytes32 agreementId,
        uint256 index,
        bytes32 root,
        bytes32 valuesHash,
        bytes32[] calldata proof
    ) external {
        Record storage record = _records[agreementId];
        _requireState(agreementId, record.state, State.Committed);
        _checkEmployer(agreementId, record.employer);
        if (index >= record.milestoneCount) revert MilestoneOutOfRange(agreementId, index);
        Milestone memory milestone = _unpack(_milestones[agreementId][index]);
        if (milestone.confirmedAt != 0) revert MilestoneAlreadyConfirmed(agreementId, index);
        // StandardMerkleTree's leaf of [sha256, salt]: hashed twice, so no inner node (a hash
        // of 64 bytes) can be a leaf.
        bytes32 leaf = keccak256(bytes.concat(valuesHash));
        if (!evidenceRegistry.verify(proof, root, leaf)) revert EvidenceNotAnchored(root, leaf);
        _milestones[agreementId][index] = _pack(milestone.kind, milestone.due, uint64(block.timestamp));
        _evidence[agreementId][index] = leaf;
        emit MilestoneConfirmed(agreementId, index, milestone.kind, root, leaf);
    }

    /// @notice The evidence leaf recorded for a milestone (zero until confirmed).
    /// @param agreementId The agreement.
    /// @param index Milestone index.
    function evidenceOf(bytes32 agreementId, uint256 index) external view returns (bytes32) {
        return _evidence[agreementId][index];
    }

    /// @inheritdoc IIntentAgreements
    function amend(
        bytes32 agreementId,
        Amendment calldata amendment,
        uint64 deadline,
        bytes calldata signature
    ) external {
        Record storage record = _records[agreementId];
        State state = record.state;
        if (state != State.Offered && state != State.Committed) {
            revert InvalidState(agreementId, state);
        }
        _checkEmployer(agreementId, record.employer);
        if (
            amendment.termsHash == bytes32(0)
                || (state == State.Offered && amendment.startDate < record.offerExpiresAt)
        ) revert InvalidTerms(agreementId);
        uint256 count = record.milestoneCount;
        if (amendment.dues.length != count) revert InvalidMilestone(amendment.dues.length);
        bool mutual = state == State.Committed;
        if (mutual) {
            if (block.timestamp > deadline) revert SignatureExpired(deadline);
            address candidate = record.candidate;
            bytes32 digest =
                _amendmentDigest(agreementId, amendment, _useNonce(candidate), deadline);
            if (!_isCandidateSignature(candidate, digest, signature)) {
                revert InvalidSignature(agreementId, candidate);
            }
        }
        uint88[MAX_MILESTONES] storage packed = _milestones[agreementId];
        for (uint256 i = 0; i < count; ++i) {
            Milestone memory milestone = _unpack(packed[i]);
            uint64 due = amendment.dues[i];
            if (due > type(uint40).max || (milestone.confirmedAt != 0 && due != milestone.due)) {
                revert InvalidMilestone(i);
            }
            if (due != milestone.due) packed[i] = _pack(milestone.kind, due, milestone.confirmedAt);
        }
        record.startDate = amendment.startDate;
        record.termsHash = amendment.termsHash;
        emit Amended(agreementId, amendment.termsHash, amendment.startDate, mutual);
    }

    /// @inheritdoc IIntentAgreements
    function confirmStart(bytes32 agreementId) external {
        Record storage record = _records[agreementId];
        _requireState(agreementId, record.state, State.Committed);
        _checkEmployer(agreementId, record.employer);
        record.state = State.Fulfilled;
        emit Fulfilled(agreementId);
    }

    /// @inheritdoc IIntentAgreements
    function declareBreach(bytes32 agreementId) external {
        Record storage record = _records[agreementId];
        _requireState(agreementId, record.state, State.Committed);
        uint64 declarableAfter = record.startDate + record.graceSeconds;
        if (block.timestamp <= declarableAfter) {
            revert BreachNotDeclarable(agreementId, declarableAfter);
        }
        Arrival memory arrival = _arrivals[agreementId];
        if (arrival.arrivedAt != 0 && !arrival.disputed) {
            revert CandidateArrived(agreementId, arrival.arrivedAt);
        }
        record.state = State.Breached;
        emit Breached(agreementId, msg.sender, record.liquidatedDamages);
    }

    /// @inheritdoc IIntentAgreements
    function recordArrival(bytes32 agreementId, uint64 deadline, bytes calldata signature)
        external
    {
        Record storage record = _records[agreementId];
        _requireState(agreementId, record.state, State.Committed);
        uint64 opensAt = record.startDate > ARRIVAL_LEAD ? record.startDate - ARRIVAL_LEAD : 0;
        if (block.timestamp < opensAt) revert ArrivalNotOpen(agreementId, opensAt);
        Arrival storage arrival = _arrivals[agreementId];
        if (arrival.arrivedAt != 0) revert ArrivalAlreadyRecorded(agreementId, arrival.arrivedAt);
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        address candidate = record.candidate;
        uint256 nonce = _useNonce(candidate);
        bytes32 digest = _arrivalDigest(agreementId, nonce, deadline);
        if (!_isCandidateSignature(candidate, digest, signature)) {
            revert InvalidSignature(agreementId, candidate);
        }
        arrival.arrivedAt = uint64(block.timestamp);
        emit ArrivalRecorded(agreementId, candidate, nonce);
    }

    /// @inheritdoc IIntentAgreements
    function disputeArrival(bytes32 agreementId) external {
        Record storage record = _records[agreementId];
        _requireState(agreementId, record.state, State.Committed);
        _checkEmployer(agreementId, record.employer);
        Arrival storage arrival = _arrivals[agreementId];
        if (arrival.arrivedAt == 0) revert NoArrival(agreementId);
        if (arrival.disputed) revert ArrivalUnderDispute(agreementId);
        uint64 closesAt = arrival.arrivedAt + DISPUTE_WINDOW;
        if (block.timestamp > closesAt) revert DisputeWindowClosed(agreementId, closesAt);
        arrival.disputed = true;
        emit ArrivalDisputed(agreementId, msg.sender);
    }

    /// @inheritdoc IIntentAgreements
    function fulfilByArrival(bytes32 agreementId) external {
        Record storage record = _records[agreementId];
        _requireState(agreementId, record.state, State.Committed);
        Arrival memory arrival = _arrivals[agreementId];
        if (arrival.arrivedAt == 0) revert NoArrival(agreementId);
        if (arrival.disputed) revert ArrivalUnderDispute(agreementId);
        uint64 closesAt = arrival.arrivedAt + DISPUTE_WINDOW;
        if (block.timestamp <= closesAt) revert DisputeWindowOpen(agreementId, closesAt);
        record.state = State.Fulfilled;
        emit Fulfilled(agreementId);
        emit FulfilledByArrival(agreementId);
    }

    /// @inheritdoc IIntentAgreements
    function withdrawOffer(bytes32 agreementId) external {
        Record storage record = _records[agreementId];
        _requireState(agreementId, record.state, State.Committed);
        _checkEmployer(agreementId, record.employer);
        record.state = State.EmployerBreached;
        emit EmployerBreached(agreementId, record.liquidatedDamages);
    }

    /// @inheritdoc IIntentAgreements
    function cancel(bytes32 agreementId, uint64 deadline, bytes calldata signature) external {
        Record storage record = _records[agreementId];
        State state = record.state;
        if (state != State.Offered && state != State.Committed) {
            revert InvalidState(agreementId, state);
        }
        _checkEmployer(agreementId, record.employer);
        bool mutual = state == State.Committed;
        if (mutual) {
            if (block.timestamp > deadline) revert SignatureExpired(deadline);
            address candidate = record.candidate;
            bytes32 digest = _cancellationDigest(agreementId, _useNonce(candidate), deadline);
            if (!_isCandidateSignature(candidate, digest, signature)) {
                revert InvalidSignature(agreementId, candidate);
            }
        }
        record.state = State.Cancelled;
        emit Cancelled(agreementId, mutual);
    }

    /// @inheritdoc IIntentAgreements
    function expire(bytes32 agreementId) external {
        Record storage record = _records[agreementId];
        _requireState(agreementId, record.state, State.Offered);
        if (block.timestamp <= record.offerExpiresAt) {
            revert OfferStillOpen(agreementId, record.offerExpiresAt);
        }
        record.state = State.Expired;
        emit Expired(agreementId);
    }

    /// @inheritdoc IIntentAgreements
    function agreementIdOf(address sender, bytes32 salt) public pure returns (bytes32) {
        return keccak256(abi.encode(sender, salt));
    }

    /// @inheritdoc IIntentAgreements
    function arrivalOf(bytes32 agreementId) external view returns (uint64, bool) {
        Arrival memory arrival = _arrivals[agreementId];
        return (arrival.arrivedAt, arrival.disputed);
    }

    /// @inheritdoc IIntentAgreements
    function arrivalDigest(bytes32 agreementId, uint64 deadline) external view returns (bytes32) {
        return _arrivalDigest(agreementId, nonces(_records[agreementId].candidate), deadline);
    }

    /// @inheritdoc IIntentAgreements
    function stateOf(bytes32 agreementId) external view returns (State) {
        return _records[agreementId].state;
    }

    /// @inheritdoc IIntentAgreements
    function termsOf(bytes32 agreementId) external view returns (Terms memory) {
        Record storage record = _records[agreementId];
        return Terms({
            employer: record.employer,
            candidate: record.candidate,
            termsHash: record.termsHash,
            startDate: record.startDate,
            graceSeconds: record.graceSeconds,
            offerExpiresAt: record.offerExpiresAt,
            monthlySalary: record.monthlySalary,
            liquidatedDamages: record.liquidatedDamages
        });
    }

    /// @inheritdoc IIntentAgreements
    function milestonesOf(bytes32 agreementId) external view returns (Milestone[] memory out) {
        uint256 count = _records[agreementId].milestoneCount;
        out = new Milestone[](count);
        for (uint256 i = 0; i < count; ++i) {
            out[i] = _unpack(_milestones[agreementId][i]);
        }
    }

    /// @inheritdoc IIntentAgreements
    function commitmentDigest(bytes32 agreementId, bytes32 ceremonyHash)
        external
        view
        returns (bytes32)
    {
        Record storage record = _records[agreementId];
        return _commitmentDigest(agreementId, record, ceremonyHash, nonces(record.candidate));
    }

    /// @inheritdoc IIntentAgreements
    function cancellationDigest(bytes32 agreementId, uint64 deadline)
        external
        view
        returns (bytes32)
    {
        return _cancellationDigest(
            agreementId, nonces(_records[agreementId].candidate), deadline
        );
    }

    /// @inheritdoc IIntentAgreements
    function amendmentDigest(bytes32 agreementId, Amendment calldata amendment, uint64 deadline)
        external
        view
        returns (bytes32)
    {
        return _amendmentDigest(
            agreementId, amendment, nonces(_records[agreementId].candidate), deadline
        );
    }

    /// @notice The EIP-712 domain separator (chain id and this contract's address included).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IIntentAgreements
    function version() external pure returns (string memory) {
        return "2.3.0";
    }

    function _commitmentDigest(
        bytes32 agreementId,
        Record storage terms,
        bytes32 ceremonyHash,
        uint256 nonce
    ) private view returns (bytes32) {
        (bytes32 kindsHash, bytes32 duesHash) = _milestoneHashes(agreementId, terms.milestoneCount);
        // Two abi.encode halves concatenated are the same 32-byte words as one (all static).
        return _hashTypedDataV4(
            keccak256(
                bytes.concat(
                    abi.encode(
                        COMMITMENT_TYPEHASH,
                        agreementId,
                        terms.candidate,
                        terms.employer,
                        terms.termsHash,
                        terms.startDate,
                        terms.graceSeconds
                    ),
                    abi.encode(
                        kindsHash,
                        duesHash,
                        terms.monthlySalary,
                        terms.liquidatedDamages,
                        ceremonyHash,
                        nonce,
                        terms.offerExpiresAt
                    )
                )
            )
        );
    }

    /// @dev EIP-712 `encodeData` of the `uint8[]` kinds and `uint64[]` due dates: the keccak of
    /// their elements, each as a 32-byte word.
    function _milestoneHashes(bytes32 agreementId, uint256 count)
        private
        view
        returns (bytes32 kindsHash, bytes32 duesHash)
    {
        uint256[] memory kinds = new uint256[](count);
        uint256[] memory dues = new uint256[](count);
        uint88[MAX_MILESTONES] storage packed = _milestones[agreementId];
        for (uint256 i = 0; i < count; ++i) {
            uint88 word = packed[i];
            kinds[i] = uint8(word >> 80);
            dues[i] = uint64((word >> 40) & type(uint40).max);
        }
        kindsHash = keccak256(abi.encodePacked(kinds));
        duesHash = keccak256(abi.encodePacked(dues));
    }

    function _arrivalDigest(bytes32 agreementId, uint256 nonce, uint64 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(ARRIVAL_TYPEHASH, agreementId, nonce, deadline)));
    }

    function _cancellationDigest(bytes32 agreementId, uint256 nonce, uint64 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(CANCELLATION_TYPEHASH, agreementId, nonce, deadline)));
    }

    function _amendmentDigest(
        bytes32 agreementId,
        Amendment calldata amendment,
        uint256 nonce,
        uint64 deadline
    ) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    AMENDMENT_TYPEHASH,
                    agreementId,
                    amendment.termsHash,
                    amendment.startDate,
                    keccak256(abi.encodePacked(amendment.dues)),
                    nonce,
                    deadline
                )
            )
        );
    }

    function _pack(uint8 kind, uint64 due, uint64 confirmedAt) private pure returns (uint88) {
        return (uint88(kind) << 80) | (uint88(due) << 40) | uint88(confirmedAt);
    }

    function _unpack(uint88 packed) private pure returns (Milestone memory) {
        return Milestone({
            kind: uint8(packed >> 80),
            due: uint64((packed >> 40) & type(uint40).max),
            confirmedAt: uint64(packed & type(uint40).max)
        });
    }

    /// @dev A 65-byte ECDSA signature or an ERC-1271 wallet's (OpenZeppelin's SignatureChecker),
    /// else a passkey's: `abi.encode(qx, qy, WebAuthnAuth)` over the digest, with user
    /// verification, from the passkey whose {passkeyAddress} is the candidate. OpenZeppelin's
    /// WebAuthn accepts only low-s signatures.
    function _isCandidateSignature(address candidate, bytes32 digest, bytes calldata signature)
        private
        view
        returns (bool)
    {
        if (candidate.code.length > 0 || signature.length == 65) {
            return SignatureChecker.isValidSignatureNow(candidate, digest, signature);
        }
        if (signature.length < 10 * 32) return false;
        (bytes32 qx, bytes32 qy, WebAuthn.WebAuthnAuth memory auth) =
            abi.decode(signature, (bytes32, bytes32, WebAuthn.WebAuthnAuth));
        return passkeyAddress(qx, qy) == candidate
            && WebAuthn.verify(abi.encodePacked(digest), auth, qx, qy, true);
    }

    function _requireState(bytes32 agreementId, State actual, State expected) private pure {
        if (actual != expected) revert InvalidState(agreementId, actual);
    }

    function _checkEmployer(bytes32 agreementId, address employer) private view {
        if (msg.sender != employer && !_operators[employer][msg.sender]) {
            revert NotEmployer(agreementId, msg.sender);
        }
    }
}
