//! Codec configuration records and the bitstream helpers packagers need.
//!
//! - [`avc`]: H.264 `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1), AVCC
//!   length-prefixed NAL units and their Annex-B form (ITU-T H.264 Annex B), and the sequence
//!   parameter set (H.264 §7.3.2.1.1, VUI Annex E.1.1).
//! - [`hevc`]: H.265 `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1) and the
//!   picture size, chroma format and bit depth of its sequence parameter set (H.265 §7.3.2.2).
//! - [`av1`]: `AV1CodecConfigurationRecord` (`av1C`) and its configuration OBUs.
//! - [`vp9`]: `VPCodecConfigurationRecord` (`vpcC`).
//! - [`opus`]: the Opus identification header (`OpusHead`) and its MP4 form (`dOps`).
//! - [`aac`]: `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1) and the ADTS header
//!   (ISO/IEC 14496-3 §1.A.2.2).
//!
//! Every parser here takes untrusted bytes from a publisher: it returns an error naming the
//! object and what was wrong, and never panics. Each record type has `parse(&[u8])` and a
//! `codecs_string()` (RFC 6381, for HLS `CODECS`).

pub mod aac;
pub mod av1;
pub mod avc;
mod bits;
pub mod hevc;
pub mod opus;
pub mod vp9;

pub use aac::{AacError, AudioSpecificConfig};
pub use av1::{Av1Config, Av1Error};
pub use avc::{AvcDecoderConfig, AvcError, SpsInfo};
pub use hevc::{HevcDecoderConfig, HevcError, HevcSpsInfo};
pub use opus::{OpusError, OpusHead};
pub use vp9::{Vp9Config, Vp9Error};

/// Why a sequence start's configuration record was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(transparent)]
    Hevc(#[from] HevcError),
    #[error(transparent)]
    Av1(#[from] Av1Error),
    #[error(transparent)]
    Vp9(#[from] Vp9Error),
    #[error(transparent)]
    Opus(#[from] OpusError),
}
