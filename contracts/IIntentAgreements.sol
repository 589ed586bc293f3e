// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/**
 * @title IIntentAgreements
 * @notice Intent agreements (入职意向书) between an employer and a candidate whose breach clause is
 * decided on chain. Only hashes, addresses, dates and amounts are stored: no names, contact data
 * or other personal data. Liquidated damages can never exceed 30% of one month's salary.
 * Version 2: ids derived from the sender and a salt, a commitment covering every term (grace
 * period and milestones included), milestone leaves computed on chain, and the candidate's
 * own arrival record, which keeps a candidate who came to work from being declared in breach.
 * Version 2.1: an offer may name its candidate later ({bindCandidate}, once they have proved who
 * they are), and a candidate may sign with a passkey (WebAuthn, P-256) instead of an Ethereum
 * key: the passkey's public key is the candidate's identity ({passkeyAddress}).
 */
interface IIntentAgreements {
    enum State {
        None,
        Offered,
        Committed,
        Fulfilled,
        Breached,
        EmployerBreached,
        Cancelled,
        Expired
    }

    /// @notice What both sides agree to; `termsHash` is the sha256 of the exact UTF-8 text.
    struct Terms {
        address employer;
        address candidate;
        bytes32 termsHash;
        uint64 startDate;
        uint32 graceSeconds;
        uint64 offerExpiresAt;
        uint128 monthlySalary;
        uint128 liquidatedDamages;
    }

    /// @notice A checkpoint to be confirmed with anchored evidence. `kind` is a code (1-255)
    /// defined off chain; `confirmedAt` is 0 until confirmed.
    struct Milestone {
        uint8 kind;
        uint64 due;
        uint64 confirmedAt;
    }

    /// @notice New dates for an agreement: the start date and every milestone's due date (in
    /// index order), with the hash of the re-issued text that states them.
    struct Amendment {
        bytes32 termsHash;
        uint64 startDate;
        uint64[] dues;
    }

    error DamagesAboveCap(uint256 damages, uint256 cap);
    error InvalidState(bytes32 agreementId, State state);
    error AgreementExists(bytes32 agreementId);
    error TooManyMilestones(uint256 count, uint256 max);
    error InvalidMilestone(uint256 index);
    error InvalidTerms(bytes32 agreementId);
    error NotEmployer(bytes32 agreementId, address account);
    error OfferExpired(bytes32 agreementId, uint64 expiredAt);
    error OfferStillOpen(bytes32 agreementId, uint64 expiresAt);
    error SignatureExpired(uint64 deadline);
    error InvalidSignature(bytes32 agreementId, address signer);
    error BreachNotDeclarable(bytes32 agreementId, uint64 declarableAfter);
    error MilestoneOutOfRange(bytes32 agreementId, uint256 index);
    error MilestoneAlreadyConfirmed(bytes32 agreementId, uint256 index);
    error EvidenceNotAnchored(bytes32 root, bytes32 leaf);
    error ArrivalNotOpen(bytes32 agreementId, uint64 opensAt);
    error ArrivalAlreadyRecorded(bytes32 agreementId, uint64 arrivedAt);
    error NoArrival(bytes32 agreementId);
    error CandidateArrived(bytes32 agreementId, uint64 arrivedAt);
    error ArrivalUnderDispute(bytes32 agreementId);
    error DisputeWindowClosed(bytes32 agreementId, uint64 closedAt);
    error DisputeWindowOpen(bytes32 agreementId, uint64 closesAt);
    error CandidateNotBound(bytes32 agreementId);
    error MissingCeremony(bytes32 agreementId);
    error RebindingPending(bytes32 agreementId, uint64 committableAt);

    event OperatorSet(address indexed employer, address indexed operator, bool approved);
    event Offered(
        bytes32 indexed agreementId,
        address indexed employer,
        address indexed candidate,
        bytes32 termsHash,
        uint64 startDate,
        uint128 liquidatedDamages
    );
    event Committed(
        bytes32 indexed agreementId, address indexed candidate, uint256 nonce, bytes32 ceremonyHash
    );
    event MilestoneConfirmed(
        bytes32 indexed agreementId,
        uint256 index,
        uint8 kind,
        bytes32 root,
        bytes32 leaf
    );
    event Amended(bytes32 indexed agreementId, bytes32 termsHash, uint64 startDate, bool mutual);
    event Fulfilled(bytes32 indexed agreementId);
    event Breached(bytes32 indexed agreementId, address indexed declaredBy, uint256 damages);
    event EmployerBreached(bytes32 indexed agreementId, uint256 damages);
    event Cancelled(bytes32 indexed agreementId, bool mutual);
    event Expired(bytes32 indexed agreementId);
    event ArrivalRecorded(bytes32 indexed agreementId, address indexed candidate, uint256 nonce);
    event ArrivalDisputed(bytes32 indexed agreementId, address indexed disputedBy);
    event FulfilledByArrival(bytes32 indexed agreementId);
    /// @notice `candidate` is now the agreement's signer; `previous` is the one it replaces
    /// (zero for the first binding).
    event CandidateBound(
        bytes32 indexed agreementId, address indexed candidate, address indexed previous
    );

    /**
     * @notice Lets `operator` act for the caller (as employer) in {offer} and employer-only calls.
     * @param operator Account acting for the employer (e.g. the OfferSeal relayer).
     * @param approved Grant or revoke.
     */
    function setOperator(address operator, bool approved) external;

    /**
     * @notice Records an offer: None -> Offered. Callable by the employer or its operator.
     * The agreement's id is {agreementIdOf}(msg.sender, salt): nobody else can take it by
     * copying the transaction from the mempool, and the sender knows it before sending.
     * @dev Reverts with {DamagesAboveCap} unless `liquidatedDamages * 10_000 <= monthlySalary *
     * 3_000`, with {TooManyMilestones} above 8 milestones, and with {InvalidTerms} when the offer
     * is already expired or expires after the start date, or the employer is zero. A zero
     * candidate is bound later with {bindCandidate}.
     * @param salt Chosen by the sender (random: the id then reveals nothing about anyone).
     * @param terms The agreed terms.
     * @param milestones Up to 8 checkpoints (their `confirmedAt` must be 0).
     * @return agreementId The new agreement's id.
     */
    function offer(bytes32 salt, Terms calldata terms, Milestone[] calldata milestones)
        external
        returns (bytes32 agreementId);

    /**
     * @notice Names the candidate of an offer made without one (or replaces the one named while
     * the offer is still unsigned: a candidate who lost their passkey enrols again). Callable by
     * the employer or its operator, only while Offered; once committed the candidate is fixed.
     * @dev Every binding emits {CandidateBound} with the signer it replaces. A replacement (a
     * previous signer that was not zero) opens a {REBIND_DELAY} during which {commit} reverts
     * with {RebindingPending}: a rebinding is public before anything can be signed under it, so
     * the candidate, told of it, can object before a commitment is made in their name.
     * @param agreementId The agreement.
     * @param candidate An Ethereum account, or {passkeyAddress} of the candidate's passkey.
     */
    function bindCandidate(bytes32 agreementId, address candidate) external;

    /**
     * @notice Offered -> Committed with the candidate's EIP-712 `Commitment` signature, before
     * the offer expires. Anyone may submit it, so the candidate needs no ether.
     * @dev The `Commitment` covers every term: parties, terms hash, start date, grace period,
     * each milestone's kind and due date, salary and damages. The signed `deadline` is the
     * offer's expiry and the `nonce` the candidate's current one, which this call consumes.
     * Plain keys, ERC-1271 wallets and passkeys are accepted: a passkey signature is
     * `abi.encode(qx, qy, WebAuthn.WebAuthnAuth)` whose challenge is the digest, signed with user
     * verification, from the key whose {passkeyAddress} is the candidate.
     * The `Commitment` also covers `ceremonyHash`: the keccak256 of the canonical record of how
     * the candidate came to sign (text opened and read, consent, the one-time code's channel and
     * destination hash, the credential). It is stored ({ceremonyOf}) and emitted, so the
     * candidate's own signature vouches for the record of the ceremony.
     * Reverts with {MissingCeremony} for a zero `ceremonyHash` and with {RebindingPending}
     * within {REBIND_DELAY} of a rebinding.
     * @param agreementId The agreement.
     * @param ceremonyHash The hash of the signing ceremony's record.
     * @param signature The candidate's signature over {commitmentDigest}.
     */
    function commit(bytes32 agreementId, bytes32 ceremonyHash, bytes calldata signature) external;

    /**
     * @notice Records anchored evidence for a milestone of a committed agreement. Callable by
     * the employer or its operator. The leaf is computed here, as OpenZeppelin's
     * StandardMerkleTree does for the values `[sha256, salt]`:
     * `leaf = keccak256(bytes.concat(valuesHash))` with `valuesHash = keccak256(abi.encode(
     * sha256, salt))`, then verified with `EvidenceRegistry.verify(proof, root, leaf)`. An
     * inner node of the tree therefore cannot pass as a document, and the document's sha256
     * and salt stay off chain.
     * @param agreementId The agreement.
     * @param index Milestone index.
     * @param root Anchored Merkle root.
     * @param valuesHash `keccak256(abi.encode(sha256, salt))` of the evidence document.
     * @param proof Merkle proof of the leaf under `root`.
     */
    function confirmMilestone(
        bytes32 agreementId,
        uint256 index,
        bytes32 root,
        bytes32 valuesHash,
        bytes32[] calldata proof
    ) external;

    /**
     * @notice Moves the start date and the milestones' due dates, and replaces the terms hash
     * with that of the re-issued text. Employer or operator only. Offered: the employer alone
     * (the candidate has not signed yet; the commitment then covers the new terms). Committed:
     * only with the candidate's EIP-712 `Amendment` signature (consumes their nonce).
     * @dev Reverts with {InvalidMilestone} when `dues` does not have one date per milestone, a
     * date does not fit in 40 bits or a confirmed milestone's date would change; with
     * {InvalidTerms} when the hash is zero or, while offered, the start precedes the offer's expiry.
     * @param agreementId The agreement.
     * @param amendment The new dates and terms hash.
     * @param deadline The signature's deadline (ignored before commitment).
     * @param signature The candidate's signature over {amendmentDigest} (empty before commitment).
     */
    function amend(
        bytes32 agreementId,
        Amendment calldata amendment,
        uint64 deadline,
        bytes calldata signature
    ) external;

    /// @notice Committed -> Fulfilled: the candidate started. Employer or operator only.
    /// @param agreementId The agreement.
    function confirmStart(bytes32 agreementId) external;

    /**
     * @notice Committed -> Breached, by anyone once the start date plus grace has passed.
     * @dev Reverts with {CandidateArrived} while the candidate's arrival is recorded and the
     * employer has not disputed it (see {recordArrival}, {disputeArrival}).
     * @param agreementId The agreement.
     */
    function declareBreach(bytes32 agreementId) external;

    /**
     * @notice Records that the candidate came to work, with their EIP-712 `Arrival` signature
     * (agreement, nonce, deadline). Anyone may relay it. Accepted while committed, from
     * ARRIVAL_LEAD before the start date until a breach is declared.
     * @dev Consumes the candidate's nonce. Reverts with {ArrivalNotOpen} too early, with
     * {ArrivalAlreadyRecorded} for a second arrival, with {SignatureExpired} after `deadline`.
     * @param agreementId The agreement.
     * @param deadline The signature's deadline.
     * @param signature The candidate's signature over {arrivalDigest}.
     */
    function recordArrival(bytes32 agreementId, uint64 deadline, bytes calldata signature)
        external;

    /**
     * @notice The employer says the candidate did not in fact start, within DISPUTE_WINDOW of
     * the arrival: {declareBreach} is then possible again (after start plus grace), and
     * {fulfilByArrival} is not. Employer or operator only; once per agreement.
     * @param agreementId The agreement.
     */
    function disputeArrival(bytes32 agreementId) external;

    /**
     * @notice Committed -> Fulfilled, by anyone, once an arrival has stood undisputed for
     * DISPUTE_WINDOW: an employer who neither confirms the start nor disputes cannot leave
     * the agreement open.
     * @param agreementId The agreement.
     */
    function fulfilByArrival(bytes32 agreementId) external;

    /// @notice Committed -> EmployerBreached: the employer withdraws a signed offer and owes the
    /// same damages. Employer or operator only.
    /// @param agreementId The agreement.
    function withdrawOffer(bytes32 agreementId) external;

    /**
     * @notice -> Cancelled. Offered: the employer alone. Committed: mutual release, with the
     * candidate's EIP-712 `Cancellation` signature.
     * @param agreementId The agreement.
     * @param deadline The signature's deadline (ignored before commitment).
     * @param signature The candidate's signature over {cancellationDigest} (empty before
     * commitment).
     */
    function cancel(bytes32 agreementId, uint64 deadline, bytes calldata signature) external;

    /// @notice Offered -> Expired, by anyone after the offer's expiry.
    /// @param agreementId The agreement.
    function expire(bytes32 agreementId) external;

    /// @notice The id {offer} gives an agreement sent by `sender` with `salt`.
    /// @param sender The offer's sender (employer or operator).
    /// @param salt The salt.
    function agreementIdOf(address sender, bytes32 salt) external pure returns (bytes32);

    /// @notice When the candidate's arrival was recorded (0: not) and whether it is disputed.
    /// @param agreementId The agreement.
    function arrivalOf(bytes32 agreementId)
        external
        view
        returns (uint64 arrivedAt, bool disputed);

    /// @notice The EIP-712 digest of an `Arrival` with the candidate's current nonce.
    /// @param agreementId The agreement.
    /// @param deadline The signature's deadline.
    function arrivalDigest(bytes32 agreementId, uint64 deadline) external view returns (bytes32);

    /// @notice The agreement's state.
    /// @param agreementId The agreement.
    function stateOf(bytes32 agreementId) external view returns (State);

    /// @notice The agreement's terms.
    /// @param agreementId The agreement.
    function termsOf(bytes32 agreementId) external view returns (Terms memory);

    /// @notice The agreement's milestones.
    /// @param agreementId The agreement.
    function milestonesOf(bytes32 agreementId) external view returns (Milestone[] memory);

    /// @notice The EIP-712 digest the candidate signs to commit, with their current nonce.
    /// @param agreementId The agreement.
    /// @param ceremonyHash The hash of the signing ceremony's record.
    function commitmentDigest(bytes32 agreementId, bytes32 ceremonyHash)
        external
        view
        returns (bytes32);

    /// @notice The ceremony hash the candidate's commitment covered (zero before {commit}).
    /// @param agreementId The agreement.
    function ceremonyOf(bytes32 agreementId) external view returns (bytes32);

    /// @notice When a rebinding of the agreement's signer was made (zero: never rebound).
    /// @param agreementId The agreement.
    function reboundAt(bytes32 agreementId) external view returns (uint64);

    /// @notice The EIP-712 digest of a `Cancellation` with the candidate's current nonce.
    /// @param agreementId The agreement.
    /// @param deadline The signature's deadline.
    function cancellationDigest(bytes32 agreementId, uint64 deadline)
        external
        view
        returns (bytes32);

    /// @notice The EIP-712 digest of an `Amendment` with the candidate's current nonce.
    /// @param agreementId The agreement.
    /// @param amendment The new dates and terms hash.
    /// @param deadline The signature's deadline.
    function amendmentDigest(bytes32 agreementId, Amendment calldata amendment, uint64 deadline)
        external
        view
        returns (bytes32);

    /// @notice Version of this implementation.
    function version() external pure returns (string memory);
}
