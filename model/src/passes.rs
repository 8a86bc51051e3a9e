//! The forward and backward passes of the network over one batch.

use kernels::{
    conv2d_backward, conv2d_forward, dropout_backward, dropout_forward, linear_backward,
    linear_forward, maxpool2d_backward, maxpool2d_forward, relu_backward, relu_forward,
    Conv2dGrads, Dropout, LinearGrads, Phase,
};

use crate::layers::Layers;
use crate::params::{layer_ranges, CONV1, CONV2, CONV3, CONV4, FC};
use crate::workspace::Workspace;
use crate::Result;

/// Seeds of the two dropout layers for one training step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropoutSeeds {
    pub(crate) first: u64,
    pub(crate) second: u64,
}

/// Runs the forward pass on `ws.act.input` and leaves the logits in
/// `ws.act.logits`. With `seeds`, dropout is active; without, it is the
/// identity and its buffers are not touched.
pub(crate) fn forward(
    params: &[f32],
    layers: &Layers,
    dropout: &Dropout,
    seeds: Option<DropoutSeeds>,
    ws: &mut Workspace,
) -> Result<()> {
    let ranges = layer_ranges();
    let act = &mut ws.act;
    let block1 = layers.conv1.output().len();
    let pooled1 = layers.pool1.output().len();
    let block2 = layers.conv3.output().len();
    let pooled2 = layers.pool2.output().len();
    let input = &act.input[..layers.conv1.input().len()];

    // Conv1 -> ReLU -> Dropout.
    let (w, b) = ranges[CONV1].split(params);
    conv2d_forward(&layers.conv1, input, w, b, &mut act.conv1[..block1])?;
    relu_forward(&act.conv1[..block1], &mut act.relu1[..block1])?;
    let conv2_input = match seeds {
        Some(seeds) => {
            let phase = Phase::Train { seed: seeds.first };
            let (out, mask) = (&mut act.drop1[..block1], &mut act.mask1[..block1]);
            dropout_forward(dropout, phase, &act.relu1[..block1], out, mask)?;
            &act.drop1[..block1]
        }
        None => &act.relu1[..block1],
    };

    // Conv2 -> MaxPool.
    let (w, b) = ranges[CONV2].split(params);
    conv2d_forward(&layers.conv2, conv2_input, w, b, &mut act.conv2[..block1])?;
    let (pooled, argmax) = (&mut act.pool1[..pooled1], &mut act.argmax1[..pooled1]);
    maxpool2d_forward(&layers.pool1, &act.conv2[..block1], pooled, argmax)?;

    // Conv3 -> ReLU -> Dropout.
    let (w, b) = ranges[CONV3].split(params);
    conv2d_forward(
        &layers.conv3,
        &act.pool1[..pooled1],
        w,
        b,
        &mut act.conv3[..block2],
    )?;
    relu_forward(&act.conv3[..block2], &mut act.relu3[..block2])?;
    let conv4_input = match seeds {
        Some(seeds) => {
            let phase = Phase::Train { seed: seeds.second };
            let (out, mask) = (&mut act.drop3[..block2], &mut act.mask3[..block2]);
            dropout_forward(dropout, phase, &act.relu3[..block2], out, mask)?;
            &act.drop3[..block2]
        }
        None => &act.relu3[..block2],
    };

    // Conv4 -> MaxPool -> Linear.
    let (w, b) = ranges[CONV4].split(params);
    conv2d_forward(&layers.conv4, conv4_input, w, b, &mut act.conv4[..block2])?;
    let (pooled, argmax) = (&mut act.pool2[..pooled2], &mut act.argmax2[..pooled2]);
    maxpool2d_forward(&layers.pool2, &act.conv4[..block2], pooled, argmax)?;
    let (w, b) = ranges[FC].split(params);
    let logits = &mut act.logits[..layers.batch * crate::CLASSES];
    linear_forward(&layers.fc, &act.pool2[..pooled2], w, b, logits)?;
    Ok(())
}

/// Runs the backward pass of a training forward pass from the logit
/// gradient in `ws.grad.logits`, overwriting `grads` (laid out as the
/// parameters).
pub(crate) fn backward(
    params: &[f32],
    layers: &Layers,
    ws: &mut Workspace,
    grads: &mut [f32],
) -> Result<()> {
    let ranges = layer_ranges();
    let (act, grad) = (&ws.act, &mut ws.grad);
    let block1 = layers.conv1.output().len();
    let pooled1 = layers.pool1.output().len();
    let block2 = layers.conv3.output().len();
    let pooled2 = layers.pool2.output().len();
    let [g2a, g2b] = &mut grad.block2;
    let [g1a, g1b] = &mut grad.block1;
    let (g2a, g2b) = (&mut g2a[..block2], &mut g2b[..block2]);
    let (g1a, g1b) = (&mut g1a[..block1], &mut g1b[..block1]);

    // Linear -> MaxPool2 -> Conv4.
    let (w, _) = ranges[FC].split(params);
    let (dw, db) = ranges[FC].split_mut(grads);
    let dlogits = &grad.logits[..layers.batch * crate::CLASSES];
    let fc_grads = LinearGrads {
        input: Some(&mut grad.pool2[..pooled2]),
        weight: dw,
        bias: db,
    };
    linear_backward(&layers.fc, &act.pool2[..pooled2], w, dlogits, fc_grads)?;
    maxpool2d_backward(
        &layers.pool2,
        &grad.pool2[..pooled2],
        &act.argmax2[..pooled2],
        g2a,
    )?;
    let (w, _) = ranges[CONV4].split(params);
    let (dw, db) = ranges[CONV4].split_mut(grads);
    let conv4_grads = Conv2dGrads {
        input: Some(&mut *g2b),
        weight: dw,
        bias: db,
    };
    conv2d_backward(&layers.conv4, &act.drop3[..block2], w, g2a, conv4_grads)?;

    // Dropout3 -> ReLU3 -> Conv3 -> MaxPool1.
    dropout_backward(&act.mask3[..block2], g2b, g2a)?;
    relu_backward(&act.relu3[..block2], g2a, g2b)?;
    let (w, _) = ranges[CONV3].split(params);
    let (dw, db) = ranges[CONV3].split_mut(grads);
    let conv3_grads = Conv2dGrads {
        input: Some(&mut grad.pool1[..pooled1]),
        weight: dw,
        bias: db,
    };
    conv2d_backward(&layers.conv3, &act.pool1[..pooled1], w, g2b, conv3_grads)?;
    maxpool2d_backward(
        &layers.pool1,
        &grad.pool1[..pooled1],
        &act.argmax1[..pooled1],
        g1a,
    )?;

    // Conv2 -> Dropout1 -> ReLU1 -> Conv1, which needs no input gradient.
    let (w, _) = ranges[CONV2].split(params);
    let (dw, db) = ranges[CONV2].split_mut(grads);
    let conv2_grads = Conv2dGrads {
        input: Some(&mut *g1b),
        weight: dw,
        bias: db,
    };
    conv2d_backward(&layers.conv2, &act.drop1[..block1], w, g1a, conv2_grads)?;
    dropout_backward(&act.mask1[..block1], g1b, g1a)?;
    relu_backward(&act.relu1[..block1], g1a, g1b)?;
    let (w, _) = ranges[CONV1].split(params);
    let (dw, db) = ranges[CONV1].split_mut(grads);
    let conv1_grads = Conv2dGrads {
        input: None,
        weight: dw,
        bias: db,
    };
    let input = &act.input[..layers.conv1.input().len()];
    conv2d_backward(&layers.conv1, input, w, g1b, conv1_grads)?;
    Ok(())
}
