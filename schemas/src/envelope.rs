//! The [`envelope!`] macro: both control-stream envelopes ([`crate::DriverMsg`] and
//! [`crate::CellMsg`]) are a `seq` plus a union body, and encode, frame, decode and validate
//! the same way. Written once here so the two directions cannot drift apart.

/// Defines a body enum (one variant per union member, named like its type) and an envelope
/// struct (`seq` + body) with `new`, `encode`, `encode_framed`, `to_vec`, `decode` and
/// `validate`, plus `From<Member>` for the body.
///
/// Every member type needs `read(fb::X<'_>) -> Result<Self>`,
/// `write(&self, fbb) -> WIPOffset<fb::X>` and `validate(&self) -> Result<()>`.
///
/// ```text
/// envelope! {
///     /// docs of the body enum
///     pub enum CellBody: fb::CellBody {
///         /// docs of the variant
///         HelloAck = HelloAck via body_as_hello_ack,   // Rust type = fb discriminant via accessor
///     }
///     /// docs of the envelope
///     pub struct CellMsg: fb::CellMessage, fb::CellMessageArgs, capacity 512 {
///         /// docs of `seq`
///         seq
///     }
/// }
/// ```
macro_rules! envelope {
    (
        $(#[$body_meta:meta])*
        pub enum $body:ident: fb::$fb_body:ident {
            $($(#[$var_meta:meta])* $var:ident = $fb_var:ident via $accessor:ident,)+
        }
        $(#[$msg_meta:meta])*
        pub struct $msg:ident: fb::$fb_root:ident, fb::$fb_args:ident, capacity $capacity:literal {
            $(#[$seq_meta:meta])*
            seq
        }
    ) => {
        $(#[$body_meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $body {
            $($(#[$var_meta])* $var($var),)+
        }

        $(#[$msg_meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $msg {
            $(#[$seq_meta])*
            pub seq: u64,
            /// The message.
            pub body: $body,
        }

        impl $msg {
            /// Wraps a body.
            pub fn new(seq: u64, body: impl Into<$body>) -> Self {
                Self {
                    seq,
                    body: body.into(),
                }
            }

            /// Encodes the envelope as a bare buffer (no frame header). Resets `fbb` first.
            #[doc = concat!("Does not validate: see [`", stringify!($msg), "::validate`].")]
            pub fn encode<'b>(
                &self,
                fbb: &'b mut ::flatbuffers::FlatBufferBuilder<'_>,
            ) -> &'b [u8] {
                fbb.reset();
                let body = self.write_body(fbb);
                let root = $crate::fb::$fb_root::create(
                    fbb,
                    &$crate::fb::$fb_args {
                        seq: self.seq,
                        body_type: self.body_type(),
                        body: Some(body),
                    },
                );
                fbb.finish(root, None);
                fbb.finished_data()
            }

            /// Appends one frame (header + buffer) for the control stream to `out`.
            pub fn encode_framed(
                &self,
                fbb: &mut ::flatbuffers::FlatBufferBuilder<'_>,
                out: &mut Vec<u8>,
            ) {
                $crate::frame::append(self.encode(fbb), out);
            }

            /// Encodes into a fresh `Vec` (no frame header).
            pub fn to_vec(&self) -> Vec<u8> {
                let mut fbb = ::flatbuffers::FlatBufferBuilder::with_capacity($capacity);
                self.encode(&mut fbb).to_vec()
            }

            /// Decodes a frame body: at most [`crate::MAX_CONTROL_MESSAGE_BYTES`], verified with
            /// [`crate::control_verifier_options`], then validated.
            pub fn decode(bytes: &[u8]) -> $crate::Result<Self> {
                use $crate::codec::{member, unknown_member, verified_root};
                let opts = $crate::control_verifier_options();
                let t = verified_root::<$crate::fb::$fb_root>(
                    bytes,
                    $crate::MAX_CONTROL_MESSAGE_BYTES,
                    &opts,
                )?;
                let body = match t.body_type() {
                    $($crate::fb::$fb_body::$fb_var => {
                        $body::$var($var::read(member(t.$accessor())?)?)
                    })+
                    other => return Err(unknown_member(stringify!($body), other.0)),
                };
                Ok(Self { seq: t.seq(), body })
            }

            #[doc = concat!("The checks [`", stringify!($msg), "::decode`] applies after verification.")]
            pub fn validate(&self) -> $crate::Result<()> {
                match &self.body {
                    $($body::$var(m) => m.validate(),)+
                }
            }

            fn body_type(&self) -> $crate::fb::$fb_body {
                match &self.body {
                    $($body::$var(_) => $crate::fb::$fb_body::$fb_var,)+
                }
            }

            fn write_body(
                &self,
                fbb: &mut ::flatbuffers::FlatBufferBuilder<'_>,
            ) -> ::flatbuffers::WIPOffset<::flatbuffers::UnionWIPOffset> {
                match &self.body {
                    $($body::$var(m) => m.write(fbb).as_union_value(),)+
                }
            }
        }

        $(impl From<$var> for $body {
            fn from(m: $var) -> Self {
                Self::$var(m)
            }
        })+
    };
}
pub(crate) use envelope;
