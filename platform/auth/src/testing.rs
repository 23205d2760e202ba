//! Fixed signing keys and a token builder for tests of the OIDC path (feature `testing`):
//! the tests play the issuer, serving [`Issuer::jwks`] and signing with [`Issuer::token`].
//!
//! The keys are fixtures made once with `openssl genrsa 2048` / `openssl ecparam -name
//! prime256v1`, stored as hex DER (PKCS#1 for RSA, PKCS#8 for P-256: what `jsonwebtoken`
//! reads without its PEM feature); they sign nothing but test tokens.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const RSA_A_DER: &str = "308204a50201000282010100d4212f8158e0321efbac2e427868f9fa26e3c654c51b26eef6581d099128348d15913d05\
    4e4967682413632b968e21cfb45949192325f841e22ae7b259ededa37c7e4db9529c49fa27f9acc128bea706277bcf22\
    b4d02d2d11fe632e03f832ecd045a48701316ba7ec7b5a82cdddb882cdc691ddc3e0d7ed36488e8685fcf7d144384a72\
    78edb9ccec0a95d941f7bbc68720229b3b35b54f2189ff0edd59170004cce027ddb39a1ffd37aeaf8e65f56fd91d3920\
    a0c803630df22db5f544103f20cacb751d93f4c3db5db0952607d01dff276f3e5fbf6376bae86ba810d6fc8af4e69f84\
    ab8530b9f84f2b3bb1ac55686f4fa66912892c4809ce9a255ea4b2f702030100010282010066a5fc57ea0aeb160510e7\
    7db0c8939651f54c86beae89e37e7f5ae5c3412254d707e5f04856cadc2100e4af35f667341c004c9806631c43bd4ea7\
    b9ad3cae0ebb725ee7fbaab73d7ed4999d0abb5f15624bce0aec56045657ebb2509509289361a121a15699748fd8a644\
    41219f55e6adee95ad2b590503bb8dd6b20fea3e7c3aaea325227039c6f95d978a0726a40922c284d607483f2f729321\
    76ec1a64db78589c5c2ece82c40a93696097d86b49a4a8c8609929f69a7ed8e5b8ad04f5504426ed47bbe3d0fe589f7d\
    869365d4908126cefd613838f48202a689701e2ebee39d8caf965ae01973771ec4ac936e19e48d27c5c0d138dea9665f\
    9ef165c67102818100ea6280bd4e5181cd3fbda5b677723be3e7e8c29c1d642e9642fa8188d4ed132dba6f1d30d22907\
    8f1752a835a446b4e2d7f0b634324f58d3f072193ce1d9f25002e2e166c29418e526593ae1c69869ab4e8e10be4e8453\
    722d40a58aa898124511cdab400496932762e81cf9c4f9f0e5a02a24a0f1bfd4610aaf46915def99bf02818100e7b145\
    1058f9a59ecb873071969a3c6d0ea264e03d14a4fcf012acb0aed0d4d968a1080078e89c81ba2bbd69b40fa5aa489a64\
    83027b7a318f80ee59b776fb4d38998b3f9ca3c727a4f253f51f83be313997dfe638c9e6fad9c0aa2cf3099f4bc4dacf\
    770a277f8011ac2b70def2de9656cf94ec11d83d4e019bbf06fc6204c902818100d8235bdab6653d509badf4298e7e9e\
    31ed82dc2b808308def206f5facb778fcf047440b3eba98059f8c4f56ef9fd660325e4c8f0db500676f2ed14ceeaeac3\
    a3faf563ac1254e59c32bfe82799aea50b1f16ace4019dcf21a40f5058cc5de7c31fc6cc5bed9f393601e4500c1813f0\
    8ca0251cbffa0ecef76a15f5fa4968911b02818100e27df6a7ce72eda6d80ba61dc43dae8865dff68106f4e17caa2b77\
    4998fb68b7c78273d21260426ec6d1ef6e1fa994276ca6114fc8e3704676a4715c9eeedf275407358acfd382e28c6aa0\
    0c65ec61c6b92870a61c29b374d1dd77fe4cefc11b4eab20589c42946f5bd754f817da9021a367758b78be4cdfaeced3\
    e53e5f8b9102818100bc9c7b3f745faf7381c9a8c44bc33e3c96615ce0284527d5f1101e1d2d994350c2e9cebbd51156\
    93c28b59b458e5295bef9d832dd2bf8728d8038dec0f38499995f1f24e581b1ad33f73813e1310928c8518f55ae341cc\
    7a13296400270031abea3ee3cd944322db3e7529c9ef33a7e529b9817dd3c7c1b61653016de9174d39";
const RSA_A_N: &str = "1CEvgVjgMh77rC5CeGj5-ibjxlTFGybu9lgdCZEoNI0VkT0FTklnaCQTYyuWjiHPtFlJGSMl-EHiKueyWe3to3x-TblSnEn6J_mswSi-pwYne88itNAtLRH-Yy4D-DLs0EWkhwExa6fse1qCzd24gs3Gkd3D4NftNkiOhoX899FEOEpyeO25zOwKldlB97vGhyAimzs1tU8hif8O3VkXAATM4Cfds5of_Teur45l9W_ZHTkgoMgDYw3yLbX1RBA_IMrLdR2T9MPbXbCVJgfQHf8nbz5fv2N2uuhrqBDW_Ir05p-Eq4UwufhPKzuxrFVob0-maRKJLEgJzpolXqSy9w";
const RSA_B_DER: &str = "308204a50201000282010100b5c6a7fb9b1f099c04907bb6a0ad5b151ed6a9b2c839f518837f35a1079ea1039b1e6992\
    aada3c78defc45201d9c184c5ee93c754b59192f90e45e29407083dc0f1d3c9d2b5e4e20572fd047e1e3474029ea3a39\
    54f77b259b0305b8bf971f47db84038a395e0ab58fd8b96a6d73aa4e9094e0edbf9d5efcf0519652045efdc8508ee08f\
    693359158bc128d263e0f1e36d6559a8ba8e1d2b18207f577f46b6eee493e68d687f4d6de7fad2d968bdb46d3c6c2e72\
    669a088bf0c1688d8b69a9a9af4653fa2008155f9a5135140afa54aad6fe7f4f58b99173735f1bbb79b8825ede5a22fc\
    5bba4cd83beb22ba3f625668d994679ad0f4027899d1cd371fe2cf9302030100010282010014c6ff3e782da5088b5104\
    830c7ca43396d1cc95dde31a0bd244011a45e7b0d9dbaa2f410f7c607b2469cb70ef517f498373bf705ccb7360877c42\
    f30e258e3ce21162734898bfef5c67dfb3c7b315dad4afac360f6b364d4719a256cab77860db4b8ca80904a1cebd0175\
    b81f88a007d8e8db88f165088d7adea882f972ee28fd0e2dcba8873437e96139fa232a6394cef9dba96ef1bc8a516946\
    9c3861a54f1e226e16376ab875de1e92cf071b42c459d51bc4153cbe4a1ddb3b3bc4266886051f18886020abe40a2bc2\
    f470f342ffae5e21781055b01f22f6e830bf557475d933599afddf9f69a418649dc41595d83a10215789ad4a0e72cf60\
    c4bf694aa902818100de2c97b5fe37513543d4ff15ce728623047ae8bc4db09c39fba54eeb86ee89022c78a873fd5e1d\
    ba2ad30e73b27c865cf56572306afbe5d63cb12736894cf17d4d2caad2a91ba02efa352d7b4a0bb6c595464160921b1e\
    9816d90c05e32b511bc352164efe79234136d1cde34aefb87516efd2f22bef11e57b8ae202e5ac6e7502818100d17383\
    76beda60b0f695361867c1a4e264edc4b585428a68016513de85d4afe5d5c0434e4d9aeb66d3a9419770417528d40c51\
    cc520cf1e9e1f29f7d82770da9b6704536578ccd9bdcc696eabdbad82a2c80fcd2ee3389250112577cbcfda20faf4ea0\
    4c76b1849651aeb7a1dbb188ce00367dc5f72e29c1df92b29b64c214e702818100cb5a436e1785e83579a5ade8f6b20a\
    2669065a9967fe9bafd2ade6c35b185f9cf6b9656decdd45164df62a0729ba227d593b063e5cddbcebcf57528def33d6\
    e11a4f24f776434be553ac72b9a2f77fcdef2883d4714693451fbc7fedaf94c943410e944eaf4a8f43347aea18fd50d7\
    238cdfebd32ef53e0b2e7ddb0a4dcffab5028181009a6a0af5b466d2fa2410853d20e1466a11f6a91b1a0fa07264f4db\
    dd25d55388a239886566195c8b0668b60eab97d6842f3095ed88603ac92ee6ec665f94dde1ccbaa08c1ba796bdddda1a\
    d11ce76f0e48991fcb720954868f6fb248281ce529a318d85d06f480c741990990aea30834b73b752649c122cfe7c003\
    2544f740e90281810087cf210cf15c2ca6d86ba56c758faf142ac648ed6295e09b306b122e829af16fa2db72b2ddaca1\
    593ee790fda0269fd36ff84d08b23bb2efbe03960354b90bf1bec9a78e1bd37c486baebc40b85433884d63a8d2db5d4d\
    4e0cef4a4b9216c1522c4849bd62d11a4adc8a4d7e159b9218cad611f596666b68a6ccb0965fb6e984";
const RSA_B_N: &str = "tcan-5sfCZwEkHu2oK1bFR7WqbLIOfUYg381oQeeoQObHmmSqto8eN78RSAdnBhMXuk8dUtZGS-Q5F4pQHCD3A8dPJ0rXk4gVy_QR-HjR0Ap6jo5VPd7JZsDBbi_lx9H24QDijleCrWP2LlqbXOqTpCU4O2_nV788FGWUgRe_chQjuCPaTNZFYvBKNJj4PHjbWVZqLqOHSsYIH9Xf0a27uST5o1of01t5_rS2Wi9tG08bC5yZpoIi_DBaI2Laampr0ZT-iAIFV-aUTUUCvpUqtb-f09YuZFzc18bu3m4gl7eWiL8W7pM2DvrIro_YlZo2ZRnmtD0AniZ0c03H-LPkw";
const EC_DER: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420bfd1539cd4ec464a88e289ef\
    43bb8da7619437a7107fb5c694ee73d25415dd5aa14403420004dfc4a99e6ead9d2b1f23759f1551f8f5354ad9c2487f\
    dd873f917bedcce8200c6e9621731cf74c0cdd4d52351796e2a8e2786a91446d30008a53d60fcb230dd5";
const EC_X: &str = "38Spnm6tnSsfI3WfFVH49TVK2cJIf92HP5F77czoIAw";
const EC_Y: &str = "bpYhcxz3TAzdTVI1F5biqOJ4apFEbTAAilPWD8sjDdU";

/// One of the fixture keys, as an issuer would hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    /// RSA 2048, signs RS256.
    RsaA,
    /// Another RSA 2048 key (a rotated or a foreign key).
    RsaB,
    /// P-256, signs ES256.
    Ec,
}

/// A test issuer: a key and the `kid` it publishes it under.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub key: TestKey,
    pub kid: String,
}

impl Issuer {
    pub fn new(key: TestKey, kid: &str) -> Self {
        Self {
            key,
            kid: kid.to_owned(),
        }
    }

    /// The public key as one JWKS entry.
    pub fn jwk(&self) -> Value {
        match self.key {
            TestKey::RsaA | TestKey::RsaB => json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                "n": if self.key == TestKey::RsaA { RSA_A_N } else { RSA_B_N }, "e": "AQAB",
            }),
            TestKey::Ec => json!({
                "kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": self.kid,
                "x": EC_X, "y": EC_Y,
            }),
        }
    }

    /// A JWKS document publishing every issuer's key.
    pub fn jwks(keys: &[&Issuer]) -> Value {
        json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
    }

    /// `claims` signed with this key, `kid` in the header.
    pub fn token(&self, claims: &Value) -> String {
        let (alg, key) = match self.key {
            TestKey::RsaA => (
                Algorithm::RS256,
                EncodingKey::from_rsa_der(&unhex(RSA_A_DER)),
            ),
            TestKey::RsaB => (
                Algorithm::RS256,
                EncodingKey::from_rsa_der(&unhex(RSA_B_DER)),
            ),
            TestKey::Ec => (Algorithm::ES256, EncodingKey::from_ec_der(&unhex(EC_DER))),
        };
        let mut header = Header::new(alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &key).expect("signing with a fixture key")
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("fixture is hex"))
        .collect()
}
