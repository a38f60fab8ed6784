//! Codec configuration records and the bitstream helpers packagers need.
//!
//! - [`avc`]: H.264 `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1), AVCC
//!   length-prefixed NAL units and their Annex-B form (ITU-T H.264 Annex B), and the sequence
//!   parameter set (H.264 §7.3.2.1.1, VUI Annex E.1.1).
//! - [`hevc`]: H.265 `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1) and the
//!   picture size, chroma format and bit depth of its sequence parameter set (H.265 §7.3.2.2).
//! - [`aac`]: `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1) and the ADTS header
//!   (ISO/IEC 14496-3 §1.A.2.2).
//!
//! Every parser here takes untrusted bytes from a publisher: it returns an error naming the
//! object and what was wrong, and never panics.

pub mod aac;
pub mod avc;
mod bits;
pub mod hevc;

pub use aac::{AacError, AudioSpecificConfig};
pub use avc::{AvcDecoderConfig, AvcError, SpsInfo};
pub use hevc::{HevcDecoderConfig, HevcError, HevcSpsInfo};
