"""Layer classes Keras itself provides (Keras 3 `keras.layers` and `keras.models`, plus names
that only Keras 2 / tf.keras legacy HDF5 files use). A legacy HDF5 config names a layer by class
alone, without a module: a class not in this list needs `custom_objects`, i.e. code from outside
Keras, to load.

Some built-in classes carry code or load files by design and are judged separately:
`Lambda` (KERAS001), and the wrappers below (KERAS002 / KERAS003)."""

from __future__ import annotations

# Keras 3.15: the Layer subclasses exported by keras.layers and keras.models.
KERAS3 = """
Activation ActivityRegularization AdaptiveAveragePooling1D AdaptiveAveragePooling2D
AdaptiveAveragePooling3D AdaptiveMaxPooling1D AdaptiveMaxPooling2D AdaptiveMaxPooling3D Add
AdditiveAttention AlphaDropout Attention AugMix AutoContrast Average AveragePooling1D
AveragePooling2D AveragePooling3D AvgPool1D AvgPool2D AvgPool3D BatchNormalization Bidirectional
CategoryEncoding CenterCrop Concatenate ContrastLimitedAdaptiveHistogramEqualization Conv1D
Conv1DTranspose Conv2D Conv2DTranspose Conv3D Conv3DTranspose ConvLSTM1D ConvLSTM2D ConvLSTM3D
Convolution1D Convolution1DTranspose Convolution2D Convolution2DTranspose Convolution3D
Convolution3DTranspose Cropping1D Cropping2D Cropping3D CutMix Dense DepthwiseConv1D DepthwiseConv2D
Discretization Dot Dropout ELU EinsumDense Embedding Equalization Flatten GRU GRUCell
GaussianDropout GaussianNoise GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D
GlobalAvgPool1D GlobalAvgPool2D GlobalAvgPool3D GlobalMaxPool1D GlobalMaxPool2D GlobalMaxPool3D
GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D GroupNormalization GroupQueryAttention
GroupedQueryAttention HashedCrossing Hashing Identity InputLayer IntegerLookup LSTM LSTMCell Lambda
LayerNormalization LeakyReLU Masking MaxNumBoundingBoxes MaxPool1D MaxPool2D MaxPool3D
MaxPooling1D MaxPooling2D MaxPooling3D Maximum MelSpectrogram Minimum MixUp Model
MultiHeadAttention Multiply Normalization PReLU Permute Pipeline RMSNormalization RNN RandAugment
RandomBrightness RandomColorDegeneration RandomColorJitter RandomContrast RandomCrop
RandomElasticTransform RandomErasing RandomFlip RandomGaussianBlur RandomGrayscale RandomHue
RandomInvert RandomPerspective RandomPosterization RandomRotation RandomSaturation RandomSharpness
RandomShear RandomTranslation RandomZoom ReLU RepeatVector Rescaling Reshape Resizing
ReversibleEmbedding STFTSpectrogram SeparableConv1D SeparableConv2D SeparableConvolution1D
SeparableConvolution2D Sequential SimpleRNN SimpleRNNCell Softmax Solarization SpatialDropout1D
SpatialDropout2D SpatialDropout3D SpectralNormalization StackedRNNCells StringLookup Subtract
TextVectorization TimeDistributed UnitNormalization UpSampling1D UpSampling2D UpSampling3D
ZeroPadding1D ZeroPadding2D ZeroPadding3D Functional
"""

# Keras 2 / tf.keras names found in legacy HDF5 files.
KERAS2 = """
ThresholdedReLU LocallyConnected1D LocallyConnected2D CuDNNGRU CuDNNLSTM DenseFeatures
SlicingOpLambda TFOpLambda InstanceProperty ClassMethod Merge AtrousConvolution1D
AtrousConvolution2D Highway MaxoutDense TimeDistributedDense
"""

BUILTIN_LAYERS = frozenset((KERAS3 + KERAS2).split())

# Built-in classes that carry code or load files: (rule, why).
CODE_CARRIERS = {
    "TorchModuleWrapper": ("KERAS002", "rebuilds a PyTorch module from a pickled torch.save blob"),
    "JaxLayer": ("KERAS002", "wraps a JAX function given as code"),
    "FlaxLayer": ("KERAS002", "wraps a Flax module given as code"),
    "TFSMLayer": ("KERAS003", "loads a TensorFlow SavedModel from a path"),
}
