// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IIntentAgreements} from "../IIntentAgreements.sol";

/**
 * @title SingleIntentAgreement
 * @notice Benchmark only: the naive design, one contract deployed per agreement, storing the
 * same terms and accepting the same EIP-712 commitment. Compared with IntentAgreements by
 * `make bench`; not used by OfferSeal.
 */
contract SingleIntentAgreement is EIP712 {
    bytes32 private constant COMMITMENT_TYPEHASH = keccak256(
        "Commitment(bytes32 agreementId,address candidate,address employer,bytes32 termsHash,"
        "uint64 startDate,uint32 graceSeconds,uint8[] milestoneKinds,uint64[] milestoneDues,"
        "uint128 monthlySalary,uint128 liquidatedDamages,uint256 nonce,uint64 deadline)"
    );

    error DamagesAboveCap(uint256 damages, uint256 cap);
    error InvalidSignature(address signer);

    bytes32 public immutable agreementId;
    IIntentAgreements.Terms public terms;
    IIntentAgreements.Milestone[] public milestones;
    IIntentAgreements.State public state;

    /// @param id Agreement identifier.
    /// @param terms_ The agreed terms.
    /// @param milestones_ The checkpoints.
    constructor(
        bytes32 id,
        IIntentAgreements.Terms memory terms_,
        IIntentAgreements.Milestone[] memory milestones_
    ) EIP712("OfferSeal IntentAgreements", "2") {
        if (uint256(terms_.liquidatedDamages) * 10_000 > uint256(terms_.monthlySalary) * 3_000) {
            revert DamagesAboveCap(terms_.liquidatedDamages, uint256(terms_.monthlySalary) * 3_000 / 10_000);
        }
        agreementId = id;
        terms = terms_;
        for (uint256 i = 0; i < milestones_.length; ++i) {
            milestones.push(milestones_[i]);
        }
        state = IIntentAgreements.State.Offered;
    }

    /// @notice Offered -> Committed with the candidate's signature (nonce 0).
    /// @param signature The candidate's EIP-712 signature.
    function commit(bytes calldata signature) external {
        uint256 count = milestones.length;
        uint256[] memory kinds = new uint256[](count);
        uint256[] memory dues = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            kinds[i] = milestones[i].kind;
            dues[i] = milestones[i].due;
        }
        bytes32 digest = _hashTypedDataV4(
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
                        keccak256(abi.encodePacked(kinds)),
                        keccak256(abi.encodePacked(dues)),
                        terms.monthlySalary,
                        terms.liquidatedDamages,
                        uint256(0),
                        terms.offerExpiresAt
                    )
                )
            )
        );
        if (!SignatureChecker.isValidSignatureNow(terms.candidate, digest, signature)) {
            revert InvalidSignature(terms.candidate);
        }
        state = IIntentAgreements.State.Committed;
    }
}
