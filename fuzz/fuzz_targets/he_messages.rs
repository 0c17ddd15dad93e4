//! The HE messages a peer controls: the client's public key and encrypted masks (parsed by the
//! server) and the server's responses (parsed by the client), as arbitrary bytes split into
//! ciphertexts.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use veil_runtime::he::pack::{ConvGeom, Tiling};
use veil_runtime::he::{ClientKey, HeClient, HeParams, HeServer};

struct Layer {
    params: HeParams,
    key: ClientKey,
    tiling: Tiling,
    client: HeClient,
    server: HeServer,
}

fn layer() -> &'static Layer {
    static L: OnceLock<Layer> = OnceLock::new();
    L.get_or_init(|| {
        let params = HeParams::for_layer(20, 1).unwrap();
        let geom = ConvGeom { c: 4, h: 1, w: 1, m: 2, kh: 1, kw: 1 };
        let tiling = Tiling::choose(geom, params.degree).unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let client = HeClient::new(&params, &mut rng).unwrap();
        let server = HeServer::new(&params, &tiling, &[1, -2, 3, 4, 5, 6, -7, 8]).unwrap();
        let key = ClientKey::parse(&params, &client.public_key(&mut rng)).unwrap();
        Layer { params, key, tiling, client, server }
    })
}

fuzz_target!(|data: &[u8]| {
    let l = layer();
    // The first byte picks where the input splits into ciphertexts.
    let (cut, rest) = data.split_first().map_or((0, data), |(c, r)| (*c as usize, r));
    let cut = cut.min(rest.len());
    let blobs = vec![rest[..cut].to_vec(), rest[cut..].to_vec()];
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
    let _ = ClientKey::parse(&l.params, rest);
    let _ = l.server.respond(&l.key, &l.tiling, &blobs[..l.tiling.input_cts().min(2)], &mut rng);
    let _ = l.server.respond(&l.key, &l.tiling, &[rest.to_vec()], &mut rng);
    let _ = l.client.decrypt(&l.tiling, &blobs[..l.tiling.output_cts().min(2)]);
    let _ = l.client.decrypt(&l.tiling, &[rest.to_vec()]);
});
