"""GPT, a decoder-only transformer language model (Radford et al., 2018-2019), course chapter 9: its classes and
its entry in the registry."""

from ...specs import ArchitectureSpec, feature_extraction, text_generation, text_inputs
from .configuration_gpt import GPTConfig
from .modeling_gpt import GPTForCausalLM, GPTModel, GPTPreTrainedModel

#: GPT-2 (Radford et al., 2019; widths and depths as released): byte-level BPE vocabulary of 50,257 tokens, 1,024
#: positions, tied embeddings. Parameter counts equal transformers' GPT2LMHeadModel's. The large and XL sizes are
#: not presets (each test of a preset builds it); `hfdl convert transformers` reads any size off its checkpoint.
_GPT2 = {"vocab_size": 50257, "max_position_embeddings": 1024, "bos_token_id": 50256, "eos_token_id": 50256}

ARCHITECTURE = ArchitectureSpec(
    name="gpt",
    model_type=GPTConfig.model_type,
    chapter="9 Transformers",
    paper="Radford, Narasimhan, Salimans & Sutskever, 2018; Radford et al., 2019",
    config_class=GPTConfig,
    tasks=(text_generation(GPTForCausalLM), feature_extraction(GPTModel, text_inputs())),
    presets={
        # nanoGPT's character-level Shakespeare model at its CPU settings: 4 layers, 4 heads, 128 wide, context 64,
        # 65 characters, no biases, no dropout (0.8M parameters); what `recipes/train_causal_lm.py` trains by default.
        # Exact (erf) GELU as in nanoGPT: on CPUs it runs 2-4x faster than GPT-2's tanh approximation.
        "gpt-char": {
            "hidden_act": "gelu",
            "vocab_size": 65,
            "max_position_embeddings": 64,
            "hidden_size": 128,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "hidden_dropout": 0.0,
            "attention_dropout": 0.0,
            "bias": False,
        },
        # A small word-piece (BPE) model for tiny-shakespeare with a 2,048-token vocabulary and context 128.
        "gpt-mini": {
            "hidden_act": "gelu",
            "vocab_size": 2048,
            "max_position_embeddings": 128,
            "hidden_size": 192,
            "num_hidden_layers": 6,
            "num_attention_heads": 6,
            "hidden_dropout": 0.1,
            "attention_dropout": 0.1,
        },
        "gpt2": {**_GPT2},  # 124,439,808 parameters
        "gpt2-medium": {**_GPT2, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},  # 354.8M
    },
    default_preset="gpt2",
    test_config={
        "vocab_size": 40,
        "max_position_embeddings": 16,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 24,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
    },
    spaces=("text-generator", "attention-explorer"),
    notebooks=("09_transformers_text",),
)

__all__ = ["ARCHITECTURE", "GPTConfig", "GPTForCausalLM", "GPTModel", "GPTPreTrainedModel"]
